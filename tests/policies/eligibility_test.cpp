// One test per explain reason, in the order decide() checks them.
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace nudge::policies;
using namespace nudge::policies::test;

namespace {

const std::vector<bool> all_consent = consent_for(
    {"analytics", "personalization", "marketing_email", "marketing_sms", "marketing_push"});

std::shared_ptr<const policy> must_compile(const std::string& doc) {
  std::string problems;
  auto p = compile_ok(doc, &problems);
  INFO(problems);
  REQUIRE(p);
  return p;
}

decision run(const policy& p, const profile_state& profile, std::string_view channel = "web",
             std::string_view placement = "banner", timestamp now = t0(),
             const std::vector<bool>* consent = &all_consent, shared_counters* counters = nullptr) {
  auto req = make_request(profile, channel, placement, now, consent);
  req.counters = counters;
  return p.decide(req);
}

}  // namespace

TEST_CASE("an action on another channel is wrong_channel", "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [{"id": "a", "channels": ["email"]}]})");
  const auto d = run(*p, profile_builder{}.build(), "web");
  CHECK(d.actions.empty());
  CHECK(entry_for(d, "a").why == reason::wrong_channel);
  CHECK(entry_for(d, "a").detail == "web");
  CHECK(to_string(reason::wrong_channel) == "wrong_channel");
}

TEST_CASE("an action for other placements is wrong_placement, any placement fits an empty one",
          "[policies][eligibility]") {
  auto p = must_compile(
      R"({"version": "1", "actions": [{"id": "a", "channels": ["web"], "placements": ["modal"]}]})");
  const auto profile = profile_builder{}.build();
  const auto d = run(*p, profile, "web", "banner");
  CHECK(entry_for(d, "a").why == reason::wrong_placement);
  CHECK(entry_for(d, "a").detail == "banner");
  const auto any = run(*p, profile, "web", "");
  REQUIRE(first_action(any) == "a");
  CHECK(any.actions[0].placement == "modal");
}

TEST_CASE("a missing required purpose or marketing consent is consent_missing",
          "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"], "requires": ["analytics", "personalization"]},
      {"id": "b", "channels": ["sms"]}]})");
  const auto profile = profile_builder{}.build();
  const auto some = consent_for({"analytics"});
  CHECK(entry_for(run(*p, profile, "web", "", t0(), &some), "a").detail == "personalization");
  CHECK(entry_for(run(*p, profile, "web", "", t0(), nullptr), "a").why == reason::consent_missing);
  const auto d = run(*p, profile, "sms", "", t0(), &some);
  CHECK(entry_for(d, "b").why == reason::consent_missing);
  CHECK(entry_for(d, "b").detail == "marketing_sms");
  CHECK(first_action(run(*p, profile, "sms", "")) == "b");
}

TEST_CASE("the fallback needs no purpose of its own but an email fallback needs marketing_email",
          "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [{"id": "a", "channels": ["web"], "when": {"event": "x"}}],
      "fallback": {"id": "house", "channels": ["web", "email"]}})");
  const auto profile = profile_builder{}.build();
  const std::vector<bool> none = consent_for({});
  CHECK(first_action(run(*p, profile, "web", "", t0(), &none)) == "house");
  const auto mail = run(*p, profile, "email", "", t0(), &none);
  CHECK(mail.actions.empty());
  CHECK(entry_for(mail, "house").why == reason::consent_missing);
  CHECK(entry_for(mail, "house").detail == "marketing_email");
  const auto granted = consent_for({"marketing_email"});
  CHECK(first_action(run(*p, profile, "email", "", t0(), &granted)) == "house");
}

TEST_CASE("a failing when is condition_false with the pointer of the failing part",
          "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1",
      "segments": {"gold": {"trait": "tier", "eq": "gold"}},
      "actions": [
      {"id": "a", "channels": ["web"], "when": {"all": [{"channel": "web"}, {"event": "x"}]}},
      {"id": "b", "channels": ["web"], "when": {"any": [{"event": "x"}, {"event": "y"}]}},
      {"id": "c", "channels": ["web"], "when": {"all": [{"segment": "gold"}]}},
      {"id": "d", "channels": ["web"], "when": {"not": {"channel": "web"}}}]})");
  const auto d = run(*p, profile_builder{}.build());
  CHECK(entry_for(d, "a").why == reason::condition_false);
  CHECK(entry_for(d, "a").detail == "/actions/0/when/all/1");
  CHECK(entry_for(d, "b").detail == "/actions/1/when");
  CHECK(entry_for(d, "c").detail == "/segments/gold");
  CHECK(entry_for(d, "d").detail == "/actions/3/when");
}

TEST_CASE("a holding suppress is suppressed with the pointer of what held",
          "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"],
       "suppress": {"any": [{"event": "x"}, {"event": "action_dismissed", "within": "30d",
                                           "where": {"action": "a"}, "gte": 2}]}}]})");
  const auto now = t0();
  const auto once = profile_builder{}
                        .event("action_dismissed", now - 24h, {{"action", std::string("a")}})
                        .build();
  CHECK(first_action(run(*p, once)) == "a");
  const auto twice = profile_builder{}
                         .event("action_dismissed", now - 48h, {{"action", std::string("a")}})
                         .event("action_dismissed", now - 24h, {{"action", std::string("a")}})
                         .build();
  const auto d = run(*p, twice);
  CHECK(d.actions.empty());
  CHECK(entry_for(d, "a").why == reason::suppressed);
  CHECK(entry_for(d, "a").detail == "/actions/0/suppress/any/1");
}

TEST_CASE("a full cap is capped until the window moves on", "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"], "cap": [{"max": 2, "per": "24h"}, {"max": 3, "per": "7d"}]}]})");
  const auto now = t0();
  const auto profile = profile_builder{}
                           .shown("a", now - 30h)
                           .shown("b", now - 5h)
                           .shown("a", now - 20h)
                           .shown("a", now - 1h)
                           .build();
  const auto d = run(*p, profile, "web", "banner", now);
  CHECK(entry_for(d, "a").why == reason::capped);
  CHECK(entry_for(d, "a").detail == "/actions/0/cap/0");
  // 20h later only the 1h-old showing is inside 24h, but the 7d cap holds 3.
  const auto later = run(*p, profile, "web", "banner", now + 20h);
  CHECK(entry_for(later, "a").detail == "/actions/0/cap/1");
  const auto much_later = run(*p, profile, "web", "banner", now + 7 * 24h);
  CHECK(first_action(much_later) == "a");
  // Conditions may see a blank view (no personalization): the limits count the profile
  // named by `limits`, whose decision log is the profile's own.
  {
    const auto blank = profile_builder{}.build();
    auto req = make_request(blank, "web", "banner", now, &all_consent);
    req.limits = &profile;
    const auto limited = p->decide(req);
    CHECK(entry_for(limited, "a").why == reason::capped);
    req.limits = nullptr;  // the view itself: nothing shown yet
    CHECK(first_action(p->decide(req)) == "a");
  }
  CHECK(p->longest_window() == std::chrono::days(7));
}

TEST_CASE("a running cooldown is cooldown until it ends", "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"],
       "cooldown": {"after_shown": "1h", "after_dismissed": "12h", "after_accepted": "7d"}}]})");
  const auto now = t0();
  SECTION("after shown, from a decision") {
    const auto profile = profile_builder{}.shown("a", now - 30min).build();
    const auto d = run(*p, profile, "web", "banner", now);
    CHECK(entry_for(d, "a").why == reason::cooldown);
    CHECK(entry_for(d, "a").detail == "/actions/0/cooldown/after_shown");
    CHECK(first_action(run(*p, profile, "web", "banner", now + 30min)) == "a");
  }
  SECTION("after shown, from an action_shown event") {
    const auto profile =
        profile_builder{}.event("action_shown", now - 59min, {{"action", std::string("a")}}).build();
    CHECK(entry_for(run(*p, profile), "a").why == reason::cooldown);
  }
  SECTION("after dismissed") {
    const auto profile =
        profile_builder{}.event("action_dismissed", now - 11h, {{"action", std::string("a")}}).build();
    CHECK(entry_for(run(*p, profile), "a").detail == "/actions/0/cooldown/after_dismissed");
    CHECK(first_action(run(*p, profile, "web", "banner", now + 1h)) == "a");
  }
  SECTION("after accepted") {
    const auto profile = profile_builder{}
                             .event("action_accepted", now - 6 * 24h, {{"action", std::string("a")}})
                             .build();
    CHECK(entry_for(run(*p, profile), "a").detail == "/actions/0/cooldown/after_accepted");
    CHECK(first_action(run(*p, profile, "web", "banner", now + 24h)) == "a");
  }
  SECTION("feedback on another action does not count") {
    const auto profile =
        profile_builder{}.event("action_accepted", now - 1h, {{"action", std::string("b")}}).build();
    CHECK(first_action(run(*p, profile)) == "a");
  }
}

TEST_CASE("a full global cap is global_capped", "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"], "global_cap": {"max": 10, "per": "24h"}}]})");
  fake_counters counters;
  counters.global_room[0] = 0;
  const auto d = run(*p, profile_builder{}.build(), "web", "banner", t0(), &all_consent, &counters);
  CHECK(d.actions.empty());
  CHECK(entry_for(d, "a").why == reason::global_capped);
  const auto info = p->describe(0);
  REQUIRE(info);
  REQUIRE(info->global_cap);
  CHECK(info->global_cap->max == 10);
  CHECK(info->global_cap->per == std::chrono::hours(24));
}

TEST_CASE("the contact policy limits decisions on its channels", "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1",
      "contact_policy": {"channels": ["email", "sms"], "max": 2, "per": "7d"},
      "actions": [{"id": "a", "channels": ["email", "web"]}]})");
  const auto now = t0();
  const auto profile = profile_builder{}
                           .shown("x", now - 8 * 24h, "email", "")
                           .shown("y", now - 3 * 24h, "sms", "")
                           .shown("z", now - 2 * 24h, "web", "banner")
                           .shown("w", now - 1h, "email", "")
                           .build();
  const auto d = run(*p, profile, "email", "", now);
  CHECK(entry_for(d, "a").why == reason::contact_policy);
  CHECK(entry_for(d, "a").detail == "/contact_policy");
  CHECK(first_action(run(*p, profile, "web", "", now)) == "a");
  CHECK(first_action(run(*p, profile, "email", "", now + 5 * 24h)) == "a");
}

TEST_CASE("a profile in the holdout gets only the fallback", "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "holdout": 1.0, "holdout_salt": "s",
      "actions": [{"id": "a", "channels": ["web"]}, {"id": "b", "channels": ["email"]}],
      "fallback": {"id": "house", "channels": ["web"]}})");
  const auto d = run(*p, profile_builder{}.build());
  CHECK(d.holdout);
  CHECK(entry_for(d, "a").why == reason::holdout);
  CHECK(entry_for(d, "b").why == reason::wrong_channel);
  CHECK(first_action(d) == "house");
  CHECK(entry_for(d, "house").why == reason::eligible);
}

TEST_CASE("an eligible action that is not chosen lost_arbitration", "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"], "priority": 1},
      {"id": "b", "channels": ["web"], "priority": 2}],
      "arbitration": {"rank_by": "priority"},
      "fallback": {"id": "house", "channels": ["web"]}})");
  const auto d = run(*p, profile_builder{}.build());
  CHECK(first_action(d) == "b");
  CHECK(entry_for(d, "a").why == reason::lost_arbitration);
  CHECK(entry_for(d, "b").why == reason::eligible);
  CHECK(entry_for(d, "house").why == reason::lost_arbitration);
  REQUIRE(d.explain.size() == 3);
  CHECK(d.explain[0].action == "a");
  CHECK(d.explain[2].action == "house");
}

TEST_CASE("explain is empty unless asked", "[policies][eligibility]") {
  auto p = must_compile(R"({"version": "1", "actions": [{"id": "a", "channels": ["web"]}]})");
  const auto profile = profile_builder{}.build();
  auto req = make_request(profile, "web", "", t0(), &all_consent, false);
  const auto d = p->decide(req);
  CHECK(d.explain.empty());
  CHECK(first_action(d) == "a");
}
