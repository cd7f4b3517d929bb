#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "storage/reply_pack.hpp"

namespace nudge::storage {
namespace {

constexpr std::string_view message_id = "e-7f3a";
constexpr std::string_view profile_id = "p-01M9659PXDF8NTP3EZ3T5E90Y4";

/// Packs and unpacks `json`; the size packed.
std::size_t round_trip(std::string_view json, std::string_view mid = message_id, std::string_view pid = profile_id) {
  std::string packed, back;
  REQUIRE(pack_reply(json, mid, pid, packed));
  REQUIRE(unpack_reply(packed, mid, pid, back));
  CHECK(back == json);
  return packed.size();
}

TEST_CASE("replies of every kind come back from their packed form byte for byte", "[storage][reply_pack]") {
  SECTION("an ack packs to its five tokens") {
    CHECK(round_trip(R"({"type":"ack","id":"e-7f3a","profile_id":"p-01M9659PXDF8NTP3EZ3T5E90Y4"})") == 5);
  }
  SECTION("a decision with two actions and the holdout flag") {
    const std::string json =
      R"({"type":"decision","id":"e-7f3a","decision_id":"d-01M9659PXE5SGT95NK7VCF3XHN","profile_id":)"
      R"("p-01M9659PXDF8NTP3EZ3T5E90Y4","policy_version":"v7","actions":[{"action":"welcome","channel":"web",)"
      R"("placement":"banner","score":0.3,"payload":{"template":"welcome"}},{"action":"discount","channel":)"
      R"("email","placement":"","score":1.25e-7,"payload":{"pct":10,"text":"\"10%\" off\n"}}],"holdout":true})";
    CHECK(round_trip(json) < json.size() / 2);
  }
  SECTION("a decision with explain") {
    round_trip(R"({"type":"decision","id":"e-7f3a","decision_id":"d-01M9659PXE5SGT95NK7VCF3XHN","profile_id":)"
               R"("p-01M9659PXDF8NTP3EZ3T5E90Y4","policy_version":"v7","actions":[],"explain":{"welcome":)"
               R"({"eligible":true},"vip":{"eligible":false,"reason":"condition_false","pointer":"/rules/0"},)"
               R"("promo":{"eligible":false,"reason":"consent_missing","purpose":"marketing"}}})");
  }
  SECTION("a firing's decision, whose id is null") {
    round_trip(R"({"type":"decision","id":null,"trigger":{"type":"schedule","id":"s-1","name":"cart_reminder",)"
               R"("channel":"email"},"decision_id":"d-01M9659PXE5SGT95NK7VCF3XHN","profile_id":)"
               R"("p-01M9659PXDF8NTP3EZ3T5E90Y4","policy_version":"v7","actions":[]})");
  }
  SECTION("texts that only look like the tokens' texts") {
    round_trip(R"({"a":"d-01M9659PXE5SGT95NK7VCF3XH","b":"d-01m9659pxe5sgt95nk7vcf3xhn","c":"d-01M9659PXE5SGT95NK7VCF3XHNN"})");
    round_trip(R"({"id":"e-7f3","x":"e-7f3ab","y":"p-01M9659PXDF8NTP3EZ3T5E90Y","z":",\"score\":"})");
    round_trip(R"({"type":"decision","id)");
    round_trip(R"(,"sco)");
    round_trip("\"d-0123");
    round_trip("\"");
    round_trip("");
  }
  SECTION("ids that JSON escapes, an empty id, and a message id equal to the profile id") {
    round_trip(R"({"type":"ack","id":"a\"b","profile_id":"p-1"})", "a\"b", "p-1");
    round_trip(R"({"type":"ack","id":"a\\\"b","profile_id":"p-1"})", "a\\\"b", "p-1");
    round_trip(R"({"type":"ack","id":"","profile_id":""})", "", "");
    round_trip(R"({"type":"ack","id":"x","profile_id":"x"})", "x", "x");
  }
}

TEST_CASE("the packed form is the stored format: its tokens and bytes do not change", "[storage][reply_pack]") {
  auto packed = [](std::string_view json) {
    std::string out;
    REQUIRE(pack_reply(json, message_id, profile_id, out));
    return out;
  };
  CHECK(packed(R"({"type":"ack","id":"e-7f3a","profile_id":"p-01M9659PXDF8NTP3EZ3T5E90Y4"})") == "\x05\x01\x07\x02}");
  CHECK(packed(R"("d-00000000000000000000000001")") == "\x03" + std::string(15, '\0') + std::string("\0\x40", 2));
  CHECK(packed(R"("d-ZZZZZZZZZZZZZZZZZZZZZZZZZZ")") == "\x03" + std::string(16, '\xff') + "\xc0");
  CHECK(packed(R"(:{"eligible":false,"reason":,"purpose":)") == "\x12\x14");
}

TEST_CASE("texts made of the tokens' pieces at random come back byte for byte", "[storage][reply_pack]") {
  const std::vector<std::string> pieces = {
    R"({"type":"decision","id":)", R"({"type":"ack","id":)", R"(,"decision_id":)", R"(,"profile_id":)",
    R"(,"score":)", R"(:{"eligible":true})", R"(,"explain":{)", "\"e-7f3a\"", "\"e-7f3a",
    "\"p-01M9659PXDF8NTP3EZ3T5E90Y4\"", "\"d-01M9659PXE5SGT95NK7VCF3XHN\"", "\"d-ZZZZZZZZZZZZZZZZZZZZZZZZZZ\"",
    "\"d-00000000000000000000000000\"", "\"d-", "{", ",", ":", "\"", "}", "]", "x", "\xc3\xa9", "\x7f"};
  std::mt19937 rng(20261206);
  for (int n = 0; n < 2000; ++n) {
    std::string json;
    const auto count = rng() % 12;
    for (std::size_t i = 0; i < count; ++i)
      json += pieces[rng() % pieces.size()];
    INFO(json);
    round_trip(json);
  }
}

TEST_CASE("a reply with a raw control byte is refused, and unknown or cut tokens do not unpack", "[storage][reply_pack]") {
  std::string out;
  CHECK_FALSE(pack_reply("{\"a\":\"x\ty\"}", message_id, profile_id, out));
  CHECK_FALSE(pack_reply(std::string("{\0}", 3), message_id, profile_id, out));
  CHECK_FALSE(unpack_reply("\x1f", message_id, profile_id, out));
  CHECK_FALSE(unpack_reply(std::string(1, '\0'), message_id, profile_id, out));
  CHECK_FALSE(unpack_reply("\x03\x01\x02", message_id, profile_id, out));  // 2 of an id's 17 bytes
  CHECK(unpack_reply("\x01", message_id, profile_id, out));
  CHECK(out == "\"e-7f3a\"");
}

}  // namespace
}  // namespace nudge::storage
