// Ranking, ties, max_actions and placements, global reservations, fallback, holdout.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

using namespace nudge::policies;
using namespace nudge::policies::test;

namespace {

std::shared_ptr<const policy> must_compile(const std::string& doc) {
  std::string problems;
  auto p = compile_ok(doc, &problems);
  INFO(problems);
  REQUIRE(p);
  return p;
}

decision run(const policy& p, std::string_view placement = "", shared_counters* counters = nullptr,
             const profile_state& profile = profile_builder{}.build()) {
  static const std::vector<bool> consent = consent_for({"personalization"});
  auto req = make_request(profile, "web", placement, t0(), &consent);
  req.counters = counters;
  return p.decide(req);
}

std::vector<std::string> ids(const decision& d) {
  std::vector<std::string> out;
  for (const auto& a : d.actions)
    out.emplace_back(a.action.id);
  return out;
}

}  // namespace

TEST_CASE("expected value ranking prefers propensity times value times weight",
          "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "arbitration": {"max_actions": 3}, "actions": [
      {"id": "low", "channels": ["web"], "placements": ["p1"], "propensity": 0.1, "value": 10, "priority": 99},
      {"id": "high", "channels": ["web"], "placements": ["p2"], "propensity": 0.5, "value": 4, "weight": 2},
      {"id": "mid", "channels": ["web"], "placements": ["p3"], "propensity": 0.2, "value": 10}]})");
  const auto d = run(*p);
  CHECK(ids(d) == std::vector<std::string>{"high", "mid", "low"});
  CHECK(d.actions[0].score == Approx(4.0));
  CHECK(d.actions[1].score == Approx(2.0));
  CHECK(d.actions[2].score == Approx(1.0));
}

TEST_CASE("expected value ties are broken by priority, then by id", "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "arbitration": {"rank_by": "expected_value", "max_actions": 3},
      "actions": [
      {"id": "b", "channels": ["web"], "placements": ["p1"], "propensity": 0.5, "value": 2, "priority": 1},
      {"id": "c", "channels": ["web"], "placements": ["p2"], "propensity": 0.5, "value": 2, "priority": 5},
      {"id": "a", "channels": ["web"], "placements": ["p3"], "propensity": 0.5, "value": 2, "priority": 1}]})");
  CHECK(ids(run(*p)) == std::vector<std::string>{"c", "a", "b"});
}

TEST_CASE("priority ranking ties are broken by expected value, then by id",
          "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "arbitration": {"rank_by": "priority", "max_actions": 4},
      "actions": [
      {"id": "d", "channels": ["web"], "placements": ["p1"], "priority": 5, "propensity": 0.1},
      {"id": "c", "channels": ["web"], "placements": ["p2"], "priority": 5, "propensity": 0.9},
      {"id": "b", "channels": ["web"], "placements": ["p3"], "priority": 9, "propensity": 0.01},
      {"id": "a", "channels": ["web"], "placements": ["p4"], "priority": 5, "propensity": 0.1}]})");
  CHECK(ids(run(*p)) == std::vector<std::string>{"b", "c", "a", "d"});
}

TEST_CASE("by default one action is returned, ranked by expected value", "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"], "propensity": 0.2, "priority": 100},
      {"id": "b", "channels": ["web"], "propensity": 0.3}]})");
  const auto d = run(*p);
  CHECK(ids(d) == std::vector<std::string>{"b"});
  CHECK(entry_for(d, "a").why == reason::lost_arbitration);
}

TEST_CASE("at most one action is returned per placement", "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "arbitration": {"max_actions": 3}, "actions": [
      {"id": "a", "channels": ["web"], "placements": ["banner"], "propensity": 0.9},
      {"id": "b", "channels": ["web"], "placements": ["banner", "modal"], "propensity": 0.8},
      {"id": "c", "channels": ["web"], "placements": ["modal"], "propensity": 0.7},
      {"id": "d", "channels": ["web"], "placements": ["inline"], "propensity": 0.1}]})");
  SECTION("each action's first free placement when the request names none") {
    const auto d = run(*p);
    // b ranks above c: with the banner taken by a it gets the modal, which c then lacks.
    CHECK(ids(d) == std::vector<std::string>{"a", "b", "d"});
    CHECK(d.actions[0].placement == "banner");
    CHECK(d.actions[1].placement == "modal");
    CHECK(d.actions[2].placement == "inline");
    CHECK(entry_for(d, "c").why == reason::lost_arbitration);
  }
  SECTION("the request's placement") {
    const auto d = run(*p, "modal");
    CHECK(ids(d) == std::vector<std::string>{"b"});
    CHECK(entry_for(d, "a").why == reason::wrong_placement);
    CHECK(entry_for(d, "c").why == reason::lost_arbitration);
  }
}

TEST_CASE("actions without placements contend for none: max_actions alone bounds them", "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "arbitration": {"max_actions": 2}, "actions": [
      {"id": "a", "channels": ["web"], "propensity": 0.9},
      {"id": "b", "channels": ["web"], "propensity": 0.8},
      {"id": "c", "channels": ["web"], "propensity": 0.7}]})");
  const auto d = run(*p);
  CHECK(ids(d) == std::vector<std::string>{"a", "b"});
  CHECK(entry_for(d, "c").why == reason::lost_arbitration);
  // A request that names a placement: that one slot, so one action.
  CHECK(ids(run(*p, "slot")) == std::vector<std::string>{"a"});
}

TEST_CASE("an action whose global reservation fails is skipped for the next one",
          "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "coupon", "channels": ["web"], "propensity": 0.9, "global_cap": {"max": 1, "per": "24h"}},
      {"id": "other", "channels": ["web"], "propensity": 0.1}]})");
  fake_counters counters;
  counters.global_room[0] = 1;
  CHECK(ids(run(*p, "", &counters)) == std::vector<std::string>{"coupon"});
  CHECK(counters.reservations == 1);
  // Racing: available when checked, gone when reserved.
  struct racing : fake_counters {
    bool global_available(std::size_t, timestamp) override { return true; }
  } race;
  race.global_room[0] = 0;
  const auto d = run(*p, "", &race);
  CHECK(ids(d) == std::vector<std::string>{"other"});
  CHECK(entry_for(d, "coupon").why == reason::global_capped);
}

TEST_CASE("the fallback is returned only when nothing else is and it is eligible",
          "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"], "requires": ["personalization"], "when": {"event": "x"}}],
      "fallback": {"id": "house", "channels": ["web"], "when": {"not": {"trait": "opted_out", "eq": true}},
                   "payload": {"template": "house"}}})");
  const auto now = t0();
  const auto with_x = profile_builder{}.event("x", now).build();
  CHECK(ids(run(*p, "", nullptr, with_x)) == std::vector<std::string>{"a"});
  const auto plain = profile_builder{}.build();
  const auto d = run(*p, "banner", nullptr, plain);
  REQUIRE(ids(d) == std::vector<std::string>{"house"});
  CHECK(d.actions[0].action.index == p->action_count());
  CHECK(d.actions[0].action.payload_json == R"({"template":"house"})");
  CHECK(d.actions[0].placement == "banner");
  CHECK(d.actions[0].score == Approx(1.0));
  const auto opted_out = profile_builder{}.trait("opted_out", true).build();
  const auto none = run(*p, "", nullptr, opted_out);
  CHECK(none.actions.empty());
  CHECK(entry_for(none, "house").why == reason::condition_false);
}

TEST_CASE("the holdout group is a stable share of profiles", "[policies][arbitration]") {
  auto p = must_compile(R"({"version": "1", "holdout": 0.25, "holdout_salt": "q4",
      "actions": [{"id": "a", "channels": ["web"]}]})");
  int held = 0;
  for (int i = 0; i < 2000; ++i) {
    profile_builder b;
    b.state.id = "p-" + std::to_string(i);
    const auto profile = b.build();
    const auto first = run(*p, "", nullptr, profile);
    const auto again = run(*p, "", nullptr, profile);
    CHECK(first.holdout == again.holdout);
    CHECK(first.actions.empty() == first.holdout);
    held += first.holdout ? 1 : 0;
  }
  CHECK(held > 400);
  CHECK(held < 600);
}

TEST_CASE("a new holdout salt draws a new control group, also when only its last character differs",
          "[policies][arbitration]") {
  // (Plain FNV-1a kept the same group for "2026-q4" and "2026-q5", "abc" and "abd".)
  const auto group = [](const std::string& salt) {
    auto p = must_compile(R"({"version": "1", "holdout": 0.5, "holdout_salt": ")" + salt +
                          R"(", "actions": [{"id": "a", "channels": ["web"]}]})");
    std::vector<bool> held;
    for (int i = 0; i < 200; ++i) {
      profile_builder b;
      b.state.id = "p-" + std::to_string(i);
      held.push_back(run(*p, "", nullptr, b.build()).holdout);
    }
    return held;
  };
  for (const auto& [a, b] : {std::pair<std::string, std::string>{"2026-q4", "2026-q5"}, {"abc", "abd"}, {"s1", "s2"},
                             {"a", "b"}}) {
    const auto ga = group(a), gb = group(b);
    int differ = 0;
    for (std::size_t i = 0; i < ga.size(); ++i)
      differ += ga[i] != gb[i] ? 1 : 0;
    INFO(a << " / " << b);
    // Independent draws of a half share differ for about half of the profiles.
    CHECK(differ > 60);
    CHECK(differ < 140);
  }
}

// Finite numbers whose arithmetic is not. A model whose features weigh ±1e308 over an
// event seen twice sums +∞ and -∞: its score, and so the expected value, is NaN, which
// compares neither above nor below anything (std::sort with a comparator that is not
// a strict weak order is undefined and, past 16 elements, may read outside the
// range). value × weight past double's range is +∞ and ranks first.
TEST_CASE("expected values past double's range rank in order, and a NaN one ranks as 0",
          "[policies][arbitration]") {
  std::string actions;
  for (int i = 1; i <= 18; ++i)
    actions += R"({"id": "a)" + std::to_string(100 + i) + R"(", "channels": ["web"], "placements": ["p)" +
               std::to_string(i) + R"("], "propensity": 0.5, "value": )" + std::to_string(2 * i) + "},\n";
  auto p = must_compile(R"({"version": "1", "arbitration": {"max_actions": 20},
      "models": {"m": {"type": "logistic", "bias": 0, "features": [
        {"weight": 1e308, "x": {"event": "seen", "within": "30d"}},
        {"weight": -1e308, "x": {"event": "seen", "within": "30d"}}]}},
      "actions": [)" + actions +
                        R"({"id": "nan", "channels": ["web"], "placements": ["z"], "propensity": {"model": "m"}, "value": 5},
      {"id": "huge", "channels": ["web"], "placements": ["h"], "propensity": 0.5, "value": 1e200, "weight": 1e200}]})");
  const auto profile = profile_builder{}.event("seen", t0() - std::chrono::minutes(2)).event("seen", t0() - std::chrono::minutes(1)).build();
  for (int round = 0; round < 3; ++round) {
    const auto d = run(*p, "", nullptr, profile);
    REQUIRE(d.actions.size() == 20);
    CHECK(d.actions.front().action.id == "huge");
    CHECK(std::isinf(d.actions.front().score));
    for (int i = 1; i <= 18; ++i) {
      CHECK(d.actions[static_cast<std::size_t>(i)].action.id == "a" + std::to_string(119 - i));
      CHECK(d.actions[static_cast<std::size_t>(i)].score == Approx(19 - i));
    }
    CHECK(d.actions.back().action.id == "nan");
    CHECK(d.actions.back().score == 0.0);
  }
}
