// The history memo: which events match each text-reading event condition, kept per
// event by its ordinal and filled by decisions. It must answer as a fresh scan
// through every change profile_logic makes to a history (appends, drops from the
// front, late inserts and clears, which start a new range), across programs and
// past the memo's slots.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>

using namespace nudge::policies;
using namespace nudge::policies::test;
using namespace std::chrono_literals;

namespace {

// Each model scores sigmoid(-2 + 0.1 * count): an action whose propensity is that
// model reports its count through its expected value (value 1).
constexpr const char* memo_policy = R"({"version": "memo",
  "models": {
    "shoes": {"type": "logistic", "bias": -2, "features": [
      {"weight": 0.1, "x": {"event": "view", "where": {"category": "shoes"}}}]},
    "hats": {"type": "logistic", "bias": -2, "features": [
      {"weight": 0.1, "x": {"event": "view", "within": "1h", "where": {"category": "hats"}}}]},
    "buys": {"type": "logistic", "bias": -2, "features": [
      {"weight": 0.1, "x": {"event": "buy"}}]},
    "since": {"type": "logistic", "bias": -2, "features": [
      {"weight": 0.1, "x": {"event": "view", "since": "buy", "within": "2h"}}]}
  },
  "actions": [
    {"id": "shoes", "channels": ["web"], "propensity": {"model": "shoes"}},
    {"id": "hats", "channels": ["email"], "propensity": {"model": "hats"}},
    {"id": "sku", "channels": ["sms"], "params": {"sku": "SKU-1"},
     "when": {"event": "buy", "where": {"sku": {"$param": "sku"}}, "gte": 2},
     "propensity": {"model": "buys"}},
    {"id": "since", "channels": ["push"], "propensity": {"model": "since"}}
  ]})";

/// The count behind the expected value of the action chosen on `channel`, or -1
/// when none was.
int count_on(const policy& p, const profile_state& profile, std::string_view channel, timestamp now) {
  static const auto consent = consent_for({"analytics", "personalization", "marketing_email",
                                           "marketing_sms", "marketing_push"});
  const decision d = p.decide(make_request(profile, channel, "", now, &consent, false));
  if (d.actions.empty())
    return -1;
  const double ev = d.actions.front().score;
  return static_cast<int>(std::lround((std::log(ev / (1 - ev)) + 2) / 0.1));
}

std::string_view text_of(const event_record& e, std::string_view path) {
  if (auto v = e.find(path))
    if (auto s = std::get_if<std::string_view>(&*v))
      return *s;
  return {};
}

bool is_view_of(const event_record& e, std::string_view category) {
  return e.name() == "view" && text_of(e, "category") == category;
}
bool is_buy_of(const event_record& e, std::string_view sku) { return e.name() == "buy" && text_of(e, "sku") == sku; }

/// Changes a history as actors/profile_logic does, ordinals included.
struct history_driver {
  profile_state& p;
  std::mt19937 rng{20261205};
  timestamp now = t0();
  int serial = 0;

  event_record random_event(timestamp ts) {
    const std::string id = "m-" + std::to_string(++serial);
    switch (rng() % 5) {
      case 0:
        return event_record(id, "view", ts, "web", std::vector<property>{{"category", std::string("shoes")}});
      case 1:
        return event_record(id, "view", ts, "web", std::vector<property>{{"category", std::string("hats")}});
      case 2:
        return event_record(id, "view", ts, "web", std::vector<property>{{"category", std::string("bags")}});
      case 3:
        return event_record(id, "buy", ts, "web", std::vector<property>{{"sku", std::string("SKU-1")}});
      default:
        return event_record(id, "buy", ts, "web", std::vector<property>{{"sku", std::string("SKU-2")}});
    }
  }

  void append() {
    now += std::chrono::minutes(1 + rng() % 10);
    p.history.push_back(random_event(now));
    bound(40);
  }
  /// One before the newest: the history takes a new range.
  void late() {
    if (p.history.empty())
      return append();
    const auto ts = p.history.back().ts() - std::chrono::minutes(1 + rng() % 30);
    auto pos = std::upper_bound(p.history.begin(), p.history.end(), ts,
                                [](timestamp t, const event_record& h) { return t < h.ts(); });
    p.history_base += p.history.size();
    p.history.insert(pos, random_event(ts));
    bound(40);
  }
  void drop_front(std::size_t n) {
    n = std::min(n, p.history.size());
    p.history.erase(p.history.begin(), p.history.begin() + static_cast<std::ptrdiff_t>(n));
    p.history_base += n;
  }
  void bound(std::size_t max) {
    if (p.history.size() > max)
      drop_front(p.history.size() - max);
  }
  void clear() {
    p.history_base += p.history.size();
    p.history.clear();
  }
};

}  // namespace

TEST_CASE("the history memo answers as a fresh scan through appends, drops, late events and clears",
          "[policies][conditions][memo]") {
  auto pol = compile_ok(memo_policy);
  REQUIRE(pol);
  profile_state p = profile_builder{}.build();
  history_driver drive{p};

  int late = 0, cleared = 0, copied = 0;
  for (int step = 0; step < 400; ++step) {
    const auto r = drive.rng() % 100;
    if (r < 70) {
      drive.append();
    } else if (r < 80) {
      drive.late();
      ++late;
    } else if (r < 92) {
      drive.drop_front(1 + drive.rng() % 3);
    } else if (r < 95) {
      drive.clear();
      ++cleared;
    } else {
      profile_state copy = p;  // a copy starts with an empty memo
      CHECK(copy.memo.masks.empty());
      p = std::move(copy);
      ++copied;
    }
    const auto now = drive.now;
    const auto shoes = std::count_if(p.history.begin(), p.history.end(),
                                     [](const event_record& e) { return is_view_of(e, "shoes"); });
    const auto hats = std::count_if(p.history.begin(), p.history.end(), [&](const event_record& e) {
      return is_view_of(e, "hats") && e.ts() >= now - 1h;
    });
    const auto sku1 = std::count_if(p.history.begin(), p.history.end(),
                                    [](const event_record& e) { return is_buy_of(e, "SKU-1"); });
    const auto buys = std::count_if(p.history.begin(), p.history.end(),
                                    [](const event_record& e) { return e.name() == "buy"; });
    // Views after the newest buy in the history's order (none: all; a view that shares
    // the buy's time but came after it counts) and within 2 hours.
    auto after_buy = p.history.begin();
    for (auto it = p.history.begin(); it != p.history.end(); ++it)
      if (it->name() == "buy")
        after_buy = std::next(it);
    const auto since = std::count_if(after_buy, p.history.end(), [&](const event_record& e) {
      return e.name() == "view" && e.ts() >= now - 2h;
    });
    INFO("step " << step << ", base " << p.history_base << ", size " << p.history.size());
    REQUIRE(count_on(*pol, p, "web", now) == shoes);
    REQUIRE(count_on(*pol, p, "email", now) == hats);
    REQUIRE(count_on(*pol, p, "sms", now) == (sku1 >= 2 ? buys : -1));
    REQUIRE(count_on(*pol, p, "push", now) == since);

    // The masks describe the events at their indices: bit 0 the shoes view, bit 1 the
    // hats view (the window is applied at the scan), bit 2 the SKU-1 buy (its $param
    // compared as the action's constant); then the names counted without `where` or
    // looked for by `since`: bit 3 any buy (the count of buys and the since of
    // views share it), bit 4 any view.
    REQUIRE(p.memo.first == p.history_base);
    REQUIRE(p.memo.masks.size() == p.history.size());
    for (std::size_t i = 0; i < p.history.size(); ++i) {
      const auto& e = p.history[i];
      const unsigned expected = (is_view_of(e, "shoes") ? 1u : 0u) | (is_view_of(e, "hats") ? 2u : 0u) |
                                (is_buy_of(e, "SKU-1") ? 4u : 0u) | (e.name() == "buy" ? 8u : 0u) |
                                (e.name() == "view" ? 16u : 0u);
      REQUIRE(p.memo.masks[i] == expected);
    }
  }
  // The walk went through every kind of change.
  CHECK(late > 10);
  CHECK(cleared > 3);
  CHECK(copied > 3);
}

TEST_CASE("a memo filled for one program is refilled, not read, for another", "[policies][conditions][memo]") {
  auto shoes = compile_ok(memo_policy);
  std::string hats_first = memo_policy;
  // The same shape with the categories swapped: slot 0 now counts hats.
  const auto swap = [&](std::string a, std::string b) {
    for (auto pos = hats_first.find(a); pos != std::string::npos; pos = hats_first.find(a, pos + b.size()))
      hats_first.replace(pos, a.size(), b);
  };
  swap(R"("category": "shoes")", R"("category": "tmp")");
  swap(R"("category": "hats")", R"("category": "shoes")");
  swap(R"("category": "tmp")", R"("category": "hats")");
  auto hats = compile_ok(hats_first);
  REQUIRE(shoes);
  REQUIRE(hats);

  const auto now = t0();
  auto p = profile_builder{}
               .event("view", now - 3min, {{"category", std::string("shoes")}})
               .event("view", now - 2min, {{"category", std::string("shoes")}})
               .event("view", now - 1min, {{"category", std::string("hats")}})
               .build();
  for (int round = 0; round < 3; ++round) {
    CHECK(count_on(*shoes, p, "web", now) == 2);
    CHECK(count_on(*hats, p, "web", now) == 1);
    CHECK(count_on(*hats, p, "email", now) == 2);
  }
}

TEST_CASE("conditions past the memo's slots scan as before", "[policies][conditions][memo]") {
  // Twelve text-reading conditions, one feature each: eight get a slot, four scan.
  std::string features;
  for (int i = 0; i < 12; ++i)
    features += std::string(i ? "," : "") + R"({"weight": 0.1, "x": {"event": "view", "where": {"category": "c)" +
                std::to_string(i) + R"("}}})";
  // And a count with `since` that finds the slots taken: it walks the records.
  const std::string doc = R"({"version": "many", "models": {"all": {"type": "logistic", "bias": -2, "features": [)" +
                          features + R"(]}, "since": {"type": "logistic", "bias": -2, "features": [
                            {"weight": 0.1, "x": {"event": "view", "since": "stop", "within": "20m"}}]}},
                          "actions": [{"id": "all", "channels": ["web"], "propensity": {"model": "all"}},
                                      {"id": "since", "channels": ["email"], "propensity": {"model": "since"}}]})";
  auto pol = compile_ok(doc);
  REQUIRE(pol);
  const auto now = t0();
  profile_builder b;
  int expected = 0;
  for (int i = 0; i < 30; ++i) {
    const int category = (i * 7) % 15;  // c0..c14: c12..c14 count in no feature
    b.event("view", now - std::chrono::minutes(30 - i), {{"category", "c" + std::to_string(category)}});
    expected += category < 12 ? 1 : 0;
    if (i == 14)  // at the same time as the 15th view, which is not after it
      b.event("stop", now - std::chrono::minutes(30 - i), {});
  }
  auto p = b.build();
  CHECK(count_on(*pol, p, "web", now) == expected);
  // Views after the stop's time (16 to 1 minutes ago) and within 20 minutes: 15.
  CHECK(count_on(*pol, p, "email", now) == 15);
  REQUIRE(p.memo.masks.size() == p.history.size());
  // Appended events are matched once, in the next decision.
  p.history.push_back(make_event("view", now, {{"category", std::string("c11")}}));
  CHECK(count_on(*pol, p, "web", now) == expected + 1);
  p.history.push_back(make_event("view", now, {{"category", std::string("c2")}}));
  CHECK(count_on(*pol, p, "web", now) == expected + 2);
  CHECK(count_on(*pol, p, "email", now) == 17);
  CHECK(p.memo.masks.size() == p.history.size());
  p.history.push_back(make_event("stop", now, {}));
  CHECK(count_on(*pol, p, "email", now) == 0);
}
