// Hostile input to the decoder: nesting and size claims that once overflowed the stack
// (found while writing the fuzz targets of tests/fuzz/), and the limit itself.
#include "actors/wire.hpp"
#include "net/decoder.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace nudge;

namespace {

net::gateway_options options() {
  net::gateway_options o;
  net::identity_rule user;
  user.type = "user_id";
  user.priority = 1;
  o.identities.push_back(user);
  o.purposes = {"analytics"};
  return o;
}

const net::stream_source web{"web", "wk_test", "web", {}, nullptr};

}  // namespace

// Found by reasoning about tests/fuzz/fuzz_decode_json: RapidJSON's recursive parser
// overflowed the stack on deep nesting, and max_message_bytes allows 16 MiB.
TEST_CASE("a message nested millions of levels deep is refused, not a stack overflow", "[decoder][hostile]") {
  auto opts = options();
  net::decoder dec(opts);
  actors::inbound msg;
  net::decode_error err;

  SECTION("bare arrays") {
    std::string text(4 << 20, '[');
    REQUIRE_FALSE(dec.decode(text, actors::wire_format::json, web, msg, err));
    CHECK(err.code == "invalid_message");
  }
  SECTION("inside properties and traits, well-formed") {
    for (std::string key : {"properties", "traits"}) {
      std::string text = R"({"type":"event","id":"e-1","name":"x","identities":{"user_id":"u-1"},")" + key +
                         R"(":{"a":)";
      constexpr int depth = 1 << 20;
      for (int i = 0; i < depth; ++i) text += "[";
      for (int i = 0; i < depth; ++i) text += "]";
      text += "}}";
      REQUIRE_FALSE(dec.decode(text, actors::wire_format::json, web, msg, err));
      CHECK(err.code == "invalid_message");
      CHECK(err.id == "e-1");
      CHECK(err.message == "/" + key + ": nested deeper than 8");
    }
  }
}

TEST_CASE("properties nested exactly to the limit are accepted and flattened", "[decoder]") {
  auto opts = options();
  net::decoder dec(opts);
  actors::inbound msg;
  net::decode_error err;
  std::string text = R"({"type":"event","id":"e-1","name":"x","identities":{"user_id":"u-1"},"properties":)";
  for (int i = 0; i < 7; ++i) text += R"({"a":)";
  text += "[1]";
  for (int i = 0; i < 7; ++i) text += "}";
  text += "}";
  REQUIRE(dec.decode(text, actors::wire_format::json, web, msg, err));
  REQUIRE(msg.properties.size() == 1);
  CHECK(msg.properties[0].path == "a.a.a.a.a.a.a");
  CHECK(std::get<std::string>(msg.properties[0].value) == "[1]");
}

TEST_CASE("a MessagePack frame nested past the limit or claiming a huge array is refused", "[decoder][hostile]") {
  auto opts = options();
  net::decoder dec(opts);
  actors::inbound msg;
  net::decode_error err;
  SECTION("nesting") {
    std::string bytes(1 << 20, '\x91');  // fixarray of one element, a million times
    REQUIRE_FALSE(dec.decode(bytes, actors::wire_format::msgpack, web, msg, err));
  }
  SECTION("array32 of 4 billion elements in 5 bytes") {
    std::string bytes("\xdd\xff\xff\xff\xff", 5);
    REQUIRE_FALSE(dec.decode(bytes, actors::wire_format::msgpack, web, msg, err));
  }
  CHECK(err.code == "invalid_message");
  CHECK(err.message == "not a valid MessagePack map");
}

// RapidJSON's default reader made a number past double's range infinity, which the
// decoder kept as a property no JSON writer can put back (the profile's reply, the
// journal's MessagePack turned back to JSON).
TEST_CASE("a number past double's range is an invalid_message, a tiny one reads as 0", "[decoder][hostile]") {
  auto opts = options();
  net::decoder dec(opts);
  actors::inbound msg;
  net::decode_error err;
  const std::string big = "1" + std::string(25, '3') + "e300";
  for (const std::string& where : {R"("properties":{"x":)" + big + "}", R"("properties":{"list":[1,)" + big + "]}"}) {
    INFO(where);
    const std::string text =
      R"({"type":"event","id":"e-big","name":"x","identities":{"user_id":"u-1"},)" + where + "}";
    REQUIRE_FALSE(dec.decode(text, actors::wire_format::json, web, msg, err));
    CHECK(err.code == "invalid_message");
    CHECK(err.message == "invalid JSON at offset " + std::to_string(text.find(big)) + ": number out of range");
  }
  REQUIRE(dec.decode(R"({"type":"event","id":"e-tiny","name":"x","identities":{"user_id":"u-1"},"properties":{"x":-1e-400,"y":2.5}})",
                     actors::wire_format::json, web, msg, err));
  REQUIRE(msg.properties.size() == 2);
  CHECK(std::get<double>(msg.properties[0].value) == 0.0);
  CHECK(std::get<double>(msg.properties[1].value) == 2.5);
}
