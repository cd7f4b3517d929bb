// Identity normalisation, hashing and blocked placeholders (API.md section 5), as the
// gateway's decoder applies them to every message.
#include "net/decoder.hpp"

#include <catch2/catch.hpp>

#include <atomic>

namespace nudge::net {
namespace {

gateway_options options_with_rules(std::atomic<std::uint64_t>* blocked) {
  gateway_options o;
  identity_rule user{"user_id", 1, normalizer::none, false, false, {"null", "undefined"}, {}};
  user.blocked_patterns.emplace_back("^-?1$");
  identity_rule email{"email", 2, normalizer::email, false, false, {}, {}};
  identity_rule phone{"phone", 3, normalizer::phone, true, false, {}, {}};
  identity_rule device{"device_id", 4, normalizer::none, false, true, {}, {}};
  device.blocked_patterns.emplace_back("^0+(-0+)*$");
  o.identities = {user, email, phone, device};
  o.blocked_seen = blocked;
  return o;
}

const stream_source web{"web", "wk", "web", {}, nullptr};

TEST_CASE("email is trimmed and lowercased, phone keeps + and digits and is hashed", "[net][identity]") {
  std::atomic<std::uint64_t> blocked{0};
  auto opts = options_with_rules(&blocked);
  decoder dec(opts);
  std::string out;
  REQUIRE(dec.normalize(*dec.rule("email"), "  Jane.Doe@Example.COM \t", out));
  CHECK(out == "jane.doe@example.com");
  REQUIRE(dec.normalize(*dec.rule("phone"), "+44 (20) 7946-0000", out));
  // sha256("+442079460000")
  CHECK(out == "sha256:543f9cda443b9c55ebcf8ab34b586f9dc34948776b73de02393c41d5f8edc356");
}

TEST_CASE("blocked placeholders are dropped wherever they appear and counted", "[net][identity]") {
  std::atomic<std::uint64_t> blocked{0};
  auto opts = options_with_rules(&blocked);
  decoder dec(opts);
  actors::inbound msg;
  decode_error err;
  REQUIRE(dec.decode(R"({"type":"event","id":"e-1","name":"page_view","identities":{"user_id":"null","device_id":"ios-1"}})",
                     actors::wire_format::json, web, msg, err));
  REQUIRE(msg.identities.size() == 1);
  CHECK(msg.identities[0].type == "device_id");
  CHECK(blocked == 1);
  // A pattern blocks too; a message left with no identity is an invalid_message.
  actors::inbound only;
  CHECK_FALSE(dec.decode(R"({"type":"event","id":"e-2","name":"page_view","identities":{"user_id":"-1","device_id":"000-000"}})",
                         actors::wire_format::json, web, only, err));
  CHECK(err.code == "invalid_message");
  CHECK(blocked == 3);
  std::string out;
  CHECK(dec.normalize(*dec.rule("user_id"), "u-10", out));
  CHECK(out == "u-10");
}

TEST_CASE("identities are ordered by priority, highest first", "[net][identity]") {
  auto opts = options_with_rules(nullptr);
  decoder dec(opts);
  actors::inbound msg;
  decode_error err;
  REQUIRE(dec.decode(R"({"type":"event","id":"e-1","name":"login","identities":{"device_id":"ios-1","email":"A@B.C","user_id":"u-1"}})",
                     actors::wire_format::json, web, msg, err));
  REQUIRE(msg.identities.size() == 3);
  CHECK(msg.identities[0].type == "user_id");
  CHECK(msg.identities[1].type == "email");
  CHECK(msg.identities[1].value == "a@b.c");
  CHECK(msg.identities[2].type == "device_id");
}

TEST_CASE("an identity type given twice is refused in JSON and in MessagePack", "[net][identity]") {
  auto opts = options_with_rules(nullptr);
  decoder dec(opts);
  actors::inbound msg;
  decode_error err;
  const std::string twice = R"({"type":"event","id":"e-2","name":"login","identities":{"user_id":"u-1","email":"a@b.c","user_id":"u-2"}})";
  CHECK_FALSE(dec.decode(twice, actors::wire_format::json, web, msg, err));
  CHECK(err.code == "invalid_message");
  CHECK(err.message == "/identities/user_id: given more than once");
  CHECK(err.id == "e-2");
  // A MessagePack map with the key twice: fixmap of 4 (type, id, name, identities),
  // identities a fixmap of 2 with "user_id" twice.
  std::string bin = "\x84";
  const auto str = [&bin](std::string_view s) {
    bin.push_back(static_cast<char>(0xa0 | s.size()));
    bin.append(s);
  };
  str("type"); str("event"); str("id"); str("e-3"); str("name"); str("login"); str("identities");
  bin.push_back(static_cast<char>(0x82));
  str("user_id"); str("u-1"); str("user_id"); str("u-2");
  CHECK_FALSE(dec.decode(bin, actors::wire_format::msgpack, web, msg, err));
  CHECK(err.message == "/identities/user_id: given more than once");
  // Distinct types pass.
  CHECK(dec.decode(R"({"type":"event","id":"e-4","name":"x","identities":{"user_id":"u-1","email":"a@b.c"}})",
                   actors::wire_format::json, web, msg, err));
}

TEST_CASE("an error names the message's id when the id was valid, and only then", "[net]") {
  auto opts = options_with_rules(nullptr);
  decoder dec(opts);
  decode_error err;
  actors::inbound msg;
  // Fails after the id moved into the message: the error still carries it.
  CHECK_FALSE(dec.decode(R"({"type":"event","id":"long-message-id-0001","identities":{"user_id":"u-1"},"x":1})",
                         actors::wire_format::json, web, msg, err));
  CHECK(err.id == "long-message-id-0001");
  CHECK(err.message == "/x: unknown key for a event message");
  // The same message and error reused: a message without a valid id gets none back.
  CHECK_FALSE(dec.decode(R"({"type":"event","id":"","name":"x","identities":{"user_id":"u-1"}})",
                         actors::wire_format::json, web, msg, err));
  CHECK(err.id.empty());
  CHECK_FALSE(dec.decode(R"([1])", actors::wire_format::json, web, msg, err));
  CHECK(err.id.empty());
  // After a success, the error holds nothing of it.
  REQUIRE(dec.decode(R"({"type":"event","id":"ok-1","name":"x","identities":{"user_id":"u-1"}})",
                     actors::wire_format::json, web, msg, err));
  CHECK(msg.id == "ok-1");
}

TEST_CASE("one decoder reused across small, large and failing messages decodes each on its own", "[net]") {
  auto opts = options_with_rules(nullptr);
  decoder dec(opts);
  decode_error err;
  // Larger than the decoder's arena: its values spill into chunks that the next parse frees.
  std::string big = R"({"type":"event","id":"big","name":"page_view","identities":{"user_id":"u-big"},"properties":{)";
  for (int i = 0; i < 400; ++i)
    big += (i ? ",\"" : "\"") + ("key_" + std::to_string(i)) + "\":\"value number " + std::to_string(i) + "\"";
  big += "}}";
  for (int round = 0; round < 200; ++round) {
    actors::inbound small;
    auto id = "e-" + std::to_string(round);
    REQUIRE(dec.decode(R"({"type":"event","id":")" + id + R"(","name":"page_view","identities":{"user_id":"u-1"}})",
                       actors::wire_format::json, web, small, err));
    CHECK(small.id == id);
    CHECK(small.properties.empty());
    actors::inbound large;
    REQUIRE(dec.decode(big, actors::wire_format::json, web, large, err));
    CHECK(large.id == "big");
    REQUIRE(large.properties.size() == 400);
    CHECK(std::get<std::string>(large.properties[399].value) == "value number 399");
    actors::inbound bad;
    CHECK_FALSE(dec.decode(R"({"type":"event","id":"x",)", actors::wire_format::json, web, bad, err));
    CHECK(err.code == "invalid_message");
  }
}

}  // namespace
}  // namespace nudge::net
