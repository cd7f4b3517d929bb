// Every validation problem is reported, each at its JSON pointer.
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace nudge::policies;
using namespace nudge::policies::test;

namespace {

/// A policy whose only action has `extra` members (JSON text after the id and channels).
std::string with_action(const std::string& extra) {
  return R"({"version": "1", "actions": [{"id": "a", "channels": ["web"])" +
         (extra.empty() ? std::string() : ", " + extra) + "}]}";
}

void require_problem_at(const std::string& doc, const std::string& path,
                        const policy_limits& limits = {}) {
  const auto result = compile(doc, limits);
  INFO("expected a problem at '" << path << "', got:\n" << describe(result.problems));
  CHECK(has_problem_at(result.problems, path));
  CHECK_FALSE(result.compiled);
}

}  // namespace

TEST_CASE("invalid JSON is one problem at the root with the offset", "[policies][validation]") {
  const auto problems = problems_of(R"({"version": "1", )");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path.empty());
  CHECK(problems[0].message.find("offset 17") != std::string::npos);
  require_problem_at("[]", "");
}

TEST_CASE("a valid minimal policy has no problems", "[policies][validation]") {
  const auto result = compile(with_action(""), policy_limits{});
  INFO(describe(result.problems));
  CHECK(result.problems.empty());
  REQUIRE(result.compiled);
  CHECK(result.compiled->source() == R"({"version":"1","actions":[{"id":"a","channels":["web"]}]})");
  CHECK(result.compiled->longest_window() == duration{0});
}

TEST_CASE("a cap or contact policy that counts more decisions than a profile keeps is refused",
          "[policies][validation]") {
  // The profile's decision log holds decisions_kept (200): a larger max would never be full.
  require_problem_at(with_action(R"("cap": [{"max": 2, "per": "1h"}, {"max": 201, "per": "30d"}])"),
                     "/actions/0/cap/1/max");
  require_problem_at(
      R"({"version": "1", "actions": [], "contact_policy": {"channels": ["email"], "max": 201, "per": "7d"}})",
      "/contact_policy/max");
  const auto at_bound = compile(with_action(R"("cap": [{"max": 200, "per": "30d"}])"), policy_limits{});
  CHECK(at_bound.problems.empty());
  // A global cap counts across all profiles, not in one profile's log.
  const auto global = compile(with_action(R"("global_cap": {"max": 100000, "per": "1d"})"), policy_limits{});
  CHECK(global.problems.empty());
  // The bound follows the limits the service passes.
  policy_limits small;
  small.decisions_kept = 10;
  require_problem_at(with_action(R"("cap": [{"max": 11, "per": "1h"}])"), "/actions/0/cap/0/max", small);
  const auto refused = compile(with_action(R"("cap": [{"max": 201, "per": "1h"}])"), policy_limits{});
  REQUIRE(refused.problems.size() == 1);
  CHECK(refused.problems[0].message.find("at most 200") != std::string::npos);
}

TEST_CASE("version must be present and a string", "[policies][validation]") {
  require_problem_at(R"({"actions": []})", "/version");
  require_problem_at(R"({"version": 3, "actions": []})", "/version");
}

TEST_CASE("unknown keys are reported at every level", "[policies][validation]") {
  require_problem_at(R"({"version": "1", "actions": [], "colour": 1})", "/colour");
  require_problem_at(R"({"version": "1", "actions": [], "x/y~z": 1})", "/x~1y~0z");
  require_problem_at(with_action(R"("colour": 1)"), "/actions/0/colour");
  require_problem_at(with_action(R"("when": {"event": "x", "withn": "1d"})"), "/actions/0/when/withn");
  require_problem_at(with_action(R"("when": {"current": {"nam": "x"}})"), "/actions/0/when/current/nam");
  require_problem_at(with_action(R"("when": {"event": "x", "where": {"a": {"bigger": 1}}})"),
                     "/actions/0/when/where/a/bigger");
  require_problem_at(with_action(R"("cap": [{"max": 1, "per": "1d", "every": 2}])"),
                     "/actions/0/cap/0/every");
  require_problem_at(with_action(R"("global_cap": {"max": 1, "per": "1d", "x": 2})"),
                     "/actions/0/global_cap/x");
  require_problem_at(with_action(R"("cooldown": {"after_clicked": "1d"})"),
                     "/actions/0/cooldown/after_clicked");
  require_problem_at(with_action(R"("propensity": {"learn": {"prior": [1, 1], "decay": 2}})"),
                     "/actions/0/propensity/learn/decay");
  require_problem_at(R"({"version": "1", "actions": [], "arbitration": {"rank": "priority"}})",
                     "/arbitration/rank");
  require_problem_at(
      R"({"version": "1", "actions": [], "contact_policy": {"channels": ["email"], "max": 1, "per": "1d", "x": 1}})",
      "/contact_policy/x");
  require_problem_at(
      R"({"version": "1", "actions": [], "models": {"m": {"type": "logistic", "kind": 1}}})",
      "/models/m/kind");
  require_problem_at(
      R"({"version": "1", "actions": [], "models": {"m": {"type": "logistic", "features": [{"weight": 1, "x": {"channel": "web"}, "y": 2}]}}})",
      "/models/m/features/0/y");
  require_problem_at(R"({"version": "1", "actions": [], "schedules": [
      {"id": "s", "on": "a", "after": "1h", "emit": "b", "channel": "email", "repeat": true}]})",
                     "/schedules/0/repeat");
}

TEST_CASE("wrong types are reported", "[policies][validation]") {
  require_problem_at(R"({"version": "1", "actions": {}})", "/actions");
  require_problem_at(R"({"version": "1", "actions": [{"id": "a", "channels": "web"}]})",
                     "/actions/0/channels");
  require_problem_at(with_action(R"("priority": "high")"), "/actions/0/priority");
  require_problem_at(with_action(R"("value": true)"), "/actions/0/value");
  require_problem_at(with_action(R"("when": [])"), "/actions/0/when");
  require_problem_at(with_action(R"("when": {"all": {}})"), "/actions/0/when/all");
  require_problem_at(with_action(R"("when": {"event": 3})"), "/actions/0/when/event");
  require_problem_at(with_action(R"("when": {"event": "x", "gte": "3"})"), "/actions/0/when/gte");
  require_problem_at(with_action(R"("when": {"score": "m", "gte": 0.5})"), "/actions/0/when/score");
  require_problem_at(with_action(R"("params": {"sku": [1]})"), "/actions/0/params/sku");
  require_problem_at(with_action(R"("cap": {"max": 1, "per": "1d"})"), "/actions/0/cap");
  require_problem_at(with_action(R"("cap": [{"max": 1.5, "per": "1d"}])"), "/actions/0/cap/0/max");
  require_problem_at(with_action(R"("cap": [{"per": "1d"}])"), "/actions/0/cap/0/max");
}

TEST_CASE("bad durations are reported", "[policies][validation]") {
  for (const char* bad : {"\"10 minutes\"", "\"1w\"", "\"m\"", "\"-1h\"", "\"1.5h\"", "60"}) {
    INFO(bad);
    require_problem_at(with_action(std::string(R"("when": {"event": "x", "within": )") + bad + "}"),
                       "/actions/0/when/within");
  }
  require_problem_at(with_action(R"("cap": [{"max": 1, "per": "1y"}])"), "/actions/0/cap/0/per");
  require_problem_at(with_action(R"("cooldown": {"after_shown": "soon"})"),
                     "/actions/0/cooldown/after_shown");
  require_problem_at(with_action(R"("when": {"stat": "last_seen_ago", "lt": 5})"),
                     "/actions/0/when/lt");
  const auto ok = compile(
      with_action(R"("when": {"all": [{"event": "x", "within": "500ms"}, {"event": "x", "within": "30s"},
                    {"event": "x", "within": "15m"}, {"event": "x", "within": "2h"},
                    {"event": "x", "within": "7d"}]})"),
      policy_limits{});
  CHECK(ok.problems.empty());
}

TEST_CASE("unknown segments, models, purposes, identity types and channels are reported",
          "[policies][validation]") {
  require_problem_at(with_action(R"("when": {"segment": "nope"})"), "/actions/0/when/segment");
  require_problem_at(with_action(R"("when": {"score": "nope", "gt": 0.5})"), "/actions/0/when/score");
  require_problem_at(with_action(R"("propensity": {"model": "nope"})"), "/actions/0/propensity/model");
  require_problem_at(with_action(R"("requires": ["tracking"])"), "/actions/0/requires/0");
  require_problem_at(with_action(R"("when": {"consent": "tracking"})"), "/actions/0/when/consent");

  policy_limits limits;
  limits.identity_types = {"email", "phone"};
  limits.channels = {"web", "email"};
  require_problem_at(with_action(R"("when": {"identity": "fax"})"), "/actions/0/when/identity",
                     limits);
  CHECK(compile(with_action(R"("when": {"identity": "fax"})"), policy_limits{}).problems.empty());
  require_problem_at(R"({"version": "1", "actions": [{"id": "a", "channels": ["web", "pigeon"]}]})",
                     "/actions/0/channels/1", limits);
  require_problem_at(with_action(R"("when": {"channel": ["email", "pigeon"]})"),
                     "/actions/0/when/channel/1", limits);
  require_problem_at(R"({"version": "1", "actions": [], "schedules": [
      {"id": "s", "on": "a", "after": "1h", "emit": "b", "channel": "pigeon"}]})",
                     "/schedules/0/channel", limits);
}

TEST_CASE("a $param the action does not define is reported", "[policies][validation]") {
  require_problem_at(
      with_action(R"("params": {"sku": "1"}, "when": {"event": "x", "where": {"sku": {"$param": "id"}}})"),
      "/actions/0/when/where/sku/$param");
  CHECK(compile(with_action(
                    R"("params": {"sku": "1"}, "when": {"event": "x", "where": {"sku": {"$param": "sku"}}})"),
                policy_limits{})
            .problems.empty());
  require_problem_at(R"({"version": "1",
      "segments": {"bought": {"event": "purchase", "where": {"sku": {"$param": "sku"}}}},
      "actions": [{"id": "a", "channels": ["web"], "params": {"sku": "1"}, "when": {"segment": "bought"}},
                  {"id": "b", "channels": ["web"], "when": {"not": {"segment": "bought"}}}]})",
                     "/segments/bought/where/sku/$param");
}

TEST_CASE("duplicate ids and bad action ids are reported", "[policies][validation]") {
  require_problem_at(R"({"version": "1", "actions": [{"id": "a", "channels": ["web"]},
      {"id": "a", "channels": ["web"]}]})",
                     "/actions/1/id");
  require_problem_at(R"({"version": "1", "actions": [{"id": "a", "channels": ["web"]}],
      "fallback": {"id": "a", "channels": ["web"]}})",
                     "/fallback/id");
  require_problem_at(R"({"version": "1", "actions": [{"id": "Cart-Recovery", "channels": ["web"]}]})",
                     "/actions/0/id");
  require_problem_at(R"({"version": "1", "actions": [{"id": ")" + std::string(65, 'a') +
                         R"(", "channels": ["web"]}]})",
                     "/actions/0/id");
  require_problem_at(R"({"version": "1", "actions": [{"channels": ["web"]}]})", "/actions/0/id");
  require_problem_at(R"({"version": "1", "actions": [], "schedules": [
      {"id": "s", "on": "a", "after": "1h", "emit": "b", "channel": "email"},
      {"id": "s", "on": "a", "after": "2h", "emit": "b", "channel": "email"}]})",
                     "/schedules/1/id");
}

TEST_CASE("a segment that refers to itself through others is reported", "[policies][validation]") {
  require_problem_at(R"({"version": "1", "actions": [], "segments": {
      "a": {"segment": "b"}, "b": {"any": [{"segment": "c"}]}, "c": {"not": {"segment": "a"}}}})",
                     "/segments/a");
  require_problem_at(R"({"version": "1", "actions": [], "segments": {"me": {"segment": "me"}}})",
                     "/segments/me");
  require_problem_at(R"({"version": "1", "actions": [],
      "segments": {"risky": {"score": "m", "gt": 0.5}},
      "models": {"m": {"type": "logistic", "features": [{"weight": 1, "x": {"segment": "risky"}}]}}})",
                     "/segments/risky");
  CHECK(compile(R"({"version": "1", "actions": [], "segments": {
      "a": {"all": [{"segment": "b"}, {"segment": "c"}]}, "b": {"segment": "c"}, "c": {"event": "x"}}})",
                policy_limits{})
            .problems.empty());
}

TEST_CASE("channels must not be empty", "[policies][validation]") {
  require_problem_at(R"({"version": "1", "actions": [{"id": "a", "channels": []}]})",
                     "/actions/0/channels");
  require_problem_at(R"({"version": "1", "actions": [{"id": "a"}]})", "/actions/0/channels");
}

TEST_CASE("a condition needs exactly one shape", "[policies][validation]") {
  require_problem_at(with_action(R"("when": {})"), "/actions/0/when");
  require_problem_at(with_action(R"("when": {"eq": 1})"), "/actions/0/when");
  require_problem_at(with_action(R"("when": {"event": "x", "trait": "y"})"), "/actions/0/when");
  require_problem_at(with_action(R"("when": {"all": [{"not": {}}]})"), "/actions/0/when/all/0/not");
}

TEST_CASE("operator values of the wrong type are reported", "[policies][validation]") {
  require_problem_at(with_action(R"("when": {"trait": "t", "in": "gold"})"), "/actions/0/when/in");
  require_problem_at(with_action(R"("when": {"trait": "t", "exists": 1})"), "/actions/0/when/exists");
  require_problem_at(with_action(R"("when": {"trait": "t", "eq": {"a": 1}})"), "/actions/0/when/eq");
  require_problem_at(with_action(R"("when": {"event": "x", "exists": true})"),
                     "/actions/0/when/exists");
  require_problem_at(with_action(R"("when": {"event": "x", "in": [1, "2"]})"), "/actions/0/when/in/1");
  require_problem_at(with_action(R"("when": {"trait": "t"})"), "/actions/0/when");
  require_problem_at(with_action(R"("when": {"stat": "age", "gt": 1})"), "/actions/0/when/stat");
  require_problem_at(with_action(R"("when": {"event": "x", "where": {"a": [1, 2]}})"),
                     "/actions/0/when/where/a");
  require_problem_at(with_action(R"("when": {"event": "x", "where": {"a": {"$param": "p", "eq": 1}}})"),
                     "/actions/0/when/where/a");
}

TEST_CASE("numbers out of range are reported", "[policies][validation]") {
  require_problem_at(R"({"version": "1", "actions": [], "holdout": 1.5})", "/holdout");
  require_problem_at(R"({"version": "1", "actions": [], "holdout": -0.1})", "/holdout");
  require_problem_at(with_action(R"("propensity": 2)"), "/actions/0/propensity");
  require_problem_at(with_action(R"("propensity": -0.5)"), "/actions/0/propensity");
  require_problem_at(with_action(R"("propensity": {"learn": {"prior": [0, 1]}})"),
                     "/actions/0/propensity/learn/prior");
  require_problem_at(with_action(R"("propensity": {"model": "m", "learn": {}})"),
                     "/actions/0/propensity");
  require_problem_at(R"({"version": "1", "actions": [], "arbitration": {"rank_by": "random"}})",
                     "/arbitration/rank_by");
  require_problem_at(R"({"version": "1", "actions": [], "arbitration": {"max_actions": 0}})",
                     "/arbitration/max_actions");
  require_problem_at(R"({"version": "1", "actions": [], "models": {"m": {"type": "tree"}}})",
                     "/models/m/type");
}

TEST_CASE("every problem is reported, not only the first", "[policies][validation]") {
  const auto problems = problems_of(R"({"version": 1, "actions": [
      {"id": "A", "channels": [], "when": {"segment": "nope"}, "cap": [{"max": 1, "per": "1w"}]}],
      "holdout": 2})");
  INFO(describe(problems));
  CHECK(has_problem_at(problems, "/version"));
  CHECK(has_problem_at(problems, "/actions/0/id"));
  CHECK(has_problem_at(problems, "/actions/0/channels"));
  CHECK(has_problem_at(problems, "/actions/0/when/segment"));
  CHECK(has_problem_at(problems, "/actions/0/cap/0/per"));
  CHECK(has_problem_at(problems, "/holdout"));
}

TEST_CASE("deep nesting is a problem, not a crash", "[policies][validation]") {
  std::string deep = R"({"channel": "web"})";
  for (int i = 0; i < 100; ++i)
    deep = R"({"not": )" + deep + "}";
  require_problem_at(with_action(R"("when": )" + deep), "");
  const std::string hostile(100000, '[');
  CHECK_FALSE(compile(hostile, policy_limits{}).problems.empty());

  std::string segments = R"("s0": {"channel": "web"})";
  for (int i = 1; i < 100; ++i)
    segments += ", \"s" + std::to_string(i) + R"(": {"segment": "s)" + std::to_string(i - 1) + "\"}";
  const auto problems =
      problems_of(R"({"version": "1", "actions": [], "segments": {)" + segments + "}}");
  CHECK_FALSE(problems.empty());
}

TEST_CASE("payloads are kept as compact JSON and MessagePack", "[policies][validation]") {
  auto result = compile(with_action(R"("payload": {"a": [1, -2, 2.5, true, null, "x"]})"),
                        policy_limits{});
  REQUIRE(result.compiled);
  const auto info = result.compiled->describe(0);
  REQUIRE(info);
  CHECK(info->action.payload_json == R"({"a":[1,-2,2.5,true,null,"x"]})");
  const std::string expected("\x81\xa1"
                             "a\x96\x01\xfe\xcb\x40\x04\x00\x00\x00\x00\x00\x00\xc3\xc0\xa1x",
                             19);
  CHECK(info->action.payload_msgpack == expected);
  auto none = compile(with_action(""), policy_limits{});
  REQUIRE(none.compiled);
  CHECK(none.compiled->describe(0)->action.payload_json == "null");
  CHECK(none.compiled->describe(0)->action.payload_msgpack == std::string("\xc0"));
  CHECK_FALSE(none.compiled->describe(1));
}

// Found by tests/fuzz/fuzz_policy_compile: RapidJSON 1.1.0's full-precision parser read
// a zero significand with an exponent as garbage ("0.0e300" as -1.1e-280).
TEST_CASE("a zero written with an exponent compiles as zero", "[policies][validation]") {
  for (std::string zero : {"0e200", "0.0e300", "-0E+200", "0.000e-5",
                           "-0.000000000000000000000000000000000000000000000"}) {
    INFO(zero);
    const auto result = compile(with_action(R"("value": )" + zero + R"(, "payload": {"s": "0e9 \"0e9"}, "weight": 1e2)"),
                                policy_limits{});
    REQUIRE(result.compiled);
    const std::string source(result.compiled->source());
    INFO(source);
    const auto at = source.find(R"("value":)");
    REQUIRE(at != std::string::npos);
    CHECK(std::stod(source.substr(at + 8, source.find(',', at) - at - 8)) == 0.0);
    CHECK(source.find(R"("weight":100.0)") != std::string::npos);
    CHECK(source.find(R"("s":"0e9 \"0e9")") != std::string::npos);
  }
}

// Found by tests/fuzz/fuzz_policy_compile (UBSan, rapidjson/internal/diyfp.h:223): a
// long significand with a large exponent sent RapidJSON's full-precision reader past
// its table of powers of ten, and the policy compiled with -4.1e-277 in its place.
TEST_CASE("a number past double's range is refused naming its offset", "[policies][validation]") {
  const std::string big = "1" + std::string(40, '3') + "e300";
  const std::string text = with_action(R"("value": )" + big);
  const auto result = compile(text, policy_limits{});
  REQUIRE_FALSE(result.compiled);
  REQUIRE(result.problems.size() == 1);
  CHECK(result.problems[0].message ==
        "invalid JSON at offset " + std::to_string(text.find(big)) + ": number out of range");
  // Within range, a long significand is read exactly and written back as the same double.
  const std::string fine = "1" + std::string(40, '3') + "e200";
  const auto ok = compile(with_action(R"("value": )" + fine), policy_limits{});
  REQUIRE(ok.compiled);
  const std::string source(ok.compiled->source());
  const auto at = source.find(R"("value":)");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(source.substr(at + 8, source.find(',', at) - at - 8)) == std::stod(fine));
}

// Found by tests/fuzz/fuzz_policy_compile (UBSan): a count of 2^64 or more was cast to
// an integer, which is undefined; now it is refused like any non-integer count.
TEST_CASE("a count too large for 64 bits is refused, not converted", "[policies][validation]") {
  for (std::string big : {"5.55556e+120", "18446744073709551616", "1e300"}) {
    INFO(big);
    const auto result = compile(with_action(R"("cap": [{"max": )" + big + R"(, "per": "1h"}])"), policy_limits{});
    CHECK_FALSE(result.compiled);
  }
}
