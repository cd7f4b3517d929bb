// The contract's example policy (policies/examples/retail.json) end to end.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace nudge::policies;
using namespace nudge::policies::test;

namespace {

std::shared_ptr<const policy> retail() {
  const std::string text = read_text_file(NUDGE_RETAIL_POLICY);
  REQUIRE_FALSE(text.empty());
  std::string problems;
  auto p = compile_ok(text, &problems);
  INFO(problems);
  REQUIRE(p);
  return p;
}

}  // namespace

TEST_CASE("the retail example compiles without problems", "[policies][retail]") {
  const std::string text = read_text_file(NUDGE_RETAIL_POLICY);
  auto result = compile(text, policy_limits{});
  INFO(describe(result.problems));
  REQUIRE(result.problems.empty());
  REQUIRE(result.compiled);
  const policy& p = *result.compiled;
  CHECK(p.version() == "retail-example-1");
  CHECK(p.action_count() == 6);
  CHECK(p.has_fallback());
  CHECK(p.find_action("cart_recovery") == 1);
  CHECK(p.find_action("house_banner") == 6);
  CHECK(p.find_action("nope") == static_cast<std::size_t>(-1));
  CHECK(p.longest_window() == std::chrono::days(7));
  CHECK_FALSE(p.source().empty());

  const auto schedules = p.schedules();
  REQUIRE(schedules.size() == 1);
  CHECK(schedules[0].id == "abandoned_cart");
  CHECK(schedules[0].on == "cart_add");
  CHECK(schedules[0].after == std::chrono::minutes(45));
  CHECK(schedules[0].emit == "cart_abandoned");
  CHECK(schedules[0].channel == "email");
  REQUIRE(schedules[0].cancel_on.size() == 2);
  CHECK(schedules[0].cancel_on[1] == "cart_clear");

  const auto info = p.describe(1);
  REQUIRE(info);
  CHECK(info->learns);
  CHECK(info->channels.size() == 2);
  REQUIRE(info->action.required_purposes.size() >= 1);
  CHECK(info->action.required_purposes[0] == "personalization");
  CHECK(info->action.payload_json == R"({"template":"cart_reminder","discount_pct":10})");
  CHECK_FALSE(info->action.payload_msgpack.empty());
  CHECK(static_cast<unsigned char>(info->action.payload_msgpack[0]) == 0x82);  // fixmap of 2
}

TEST_CASE("an abandoned cart gets cart recovery on the web banner", "[policies][retail]") {
  auto p = retail();
  const auto now = t0();
  auto profile = profile_builder{}
                     .event("cart_add", now - 2h, {{"sku", std::string("SKU-42")}})
                     .event("page_view", now)
                     .build();
  const auto consent = consent_for({"personalization"});
  auto req = make_request(profile, "web", "banner", now, &consent);
  const decision d = p->decide(req);
  REQUIRE(d.actions.size() == 1);
  CHECK(d.actions[0].action.id == "cart_recovery");
  CHECK(d.actions[0].channel == "web");
  CHECK(d.actions[0].placement == "banner");
  CHECK(d.actions[0].score == Approx(0.1 * 15.0));  // prior mean without counters
  CHECK_FALSE(d.holdout);
  REQUIRE(d.explain.size() == 7);
  CHECK(entry_for(d, "service_recovery").why == reason::condition_false);
  CHECK(entry_for(d, "service_recovery").detail == "/segments/open_ticket");
  CHECK(entry_for(d, "promo_sku42").detail == "/actions/2/when");
  CHECK(entry_for(d, "retention_offer").why == reason::wrong_channel);
  CHECK(entry_for(d, "cart_email").why == reason::wrong_channel);
  CHECK(entry_for(d, "welcome").why == reason::condition_false);
  CHECK(entry_for(d, "house_banner").why == reason::lost_arbitration);
}

TEST_CASE("a cart added minutes ago is not yet left and the house banner is shown",
          "[policies][retail]") {
  auto p = retail();
  const auto now = t0();
  auto profile = profile_builder{}
                     .event("cart_add", now - 10min)
                     .event("page_view", now)
                     .build();
  const auto consent = consent_for({"personalization"});
  const decision d = p->decide(make_request(profile, "web", "banner", now, &consent));
  CHECK(entry_for(d, "cart_recovery").why == reason::condition_false);
  CHECK(entry_for(d, "cart_recovery").detail == "/segments/cart_left/all/1");
  REQUIRE(d.actions.size() == 1);
  CHECK(d.actions[0].action.id == "house_banner");
  CHECK(d.actions[0].action.index == 6);
  CHECK(d.actions[0].placement == "banner");
  CHECK(entry_for(d, "house_banner").why == reason::eligible);
}

TEST_CASE("a purchase after the cart add ends the abandoned cart", "[policies][retail]") {
  auto p = retail();
  const auto now = t0();
  auto profile = profile_builder{}
                     .event("cart_add", now - 3h)
                     .event("purchase", now - 2h, {{"price", 20.0}, {"sku", std::string("SKU-1")}})
                     .event("page_view", now)
                     .build();
  const auto consent = consent_for({"personalization"});
  const decision d = p->decide(make_request(profile, "web", "banner", now, &consent));
  CHECK(entry_for(d, "cart_recovery").detail == "/segments/cart_left/all/0");
  CHECK(first_action(d) == "house_banner");
}

TEST_CASE("without personalization consent only the fallback is offered", "[policies][retail]") {
  auto p = retail();
  const auto now = t0();
  auto profile = profile_builder{}.event("cart_add", now - 2h).event("page_view", now).build();
  const auto consent = consent_for({});
  const decision d = p->decide(make_request(profile, "web", "banner", now, &consent));
  CHECK(entry_for(d, "cart_recovery").why == reason::consent_missing);
  CHECK(entry_for(d, "cart_recovery").detail == "personalization");
  CHECK(first_action(d) == "house_banner");
}

TEST_CASE("an open ticket wins over the cart and suppresses it", "[policies][retail]") {
  auto p = retail();
  const auto now = t0();
  auto profile = profile_builder{}
                     .event("support_ticket_opened", now - 5h)
                     .event("cart_add", now - 2h)
                     .event("page_view", now)
                     .build();
  const auto consent = consent_for({"personalization"});
  const decision d = p->decide(make_request(profile, "mobile", "banner", now, &consent));
  CHECK(first_action(d) == "service_recovery");
  CHECK(d.actions[0].score == Approx(0.5 * 20.0));
  CHECK(entry_for(d, "cart_recovery").why == reason::suppressed);
  CHECK(entry_for(d, "cart_recovery").detail == "/segments/open_ticket");
}

TEST_CASE("a high value customer at churn risk gets the retention offer on the agent panel",
          "[policies][retail]") {
  auto p = retail();
  const auto now = t0();
  auto profile = profile_builder{}
                     .event("purchase", now - 60 * 24h, {{"price", 600.0}})
                     .event("support_ticket_opened", now - 3 * 24h)
                     .event("support_ticket_resolved", now - 2 * 24h)
                     .event("support_ticket_opened", now - 24h)
                     .event("support_ticket_opened", now - 1h)
                     .trait("tier", std::string("gold"))
                     .build();
  const auto consent = consent_for({"personalization"});
  const decision d = p->decide(make_request(profile, "support", "agent_panel", now, &consent));
  REQUIRE(first_action(d) == "retention_offer");
  const double z = -3.0 + 0.9 * 3 - 0.6 * 1 + 0.4;
  CHECK(d.actions[0].score == Approx(50.0 / (1.0 + std::exp(-z))));
  CHECK(d.actions[0].placement == "agent_panel");
}

TEST_CASE("the cart email needs marketing consent and respects the contact policy",
          "[policies][retail]") {
  auto p = retail();
  const auto now = t0();
  profile_builder b;
  b.event("cart_add", now - 45min).event("cart_abandoned", now);
  auto profile = b.build();
  const event_record current = profile.history.back();

  SECTION("without marketing_email consent") {
    const auto consent = consent_for({"personalization"});
    auto req = make_request(profile, "email", "", now, &consent);
    req.current = &current;
    const decision d = p->decide(req);
    CHECK(d.actions.empty());
    CHECK(entry_for(d, "cart_email").why == reason::consent_missing);
    CHECK(entry_for(d, "cart_email").detail == "marketing_email");
    CHECK(entry_for(d, "house_banner").why == reason::wrong_channel);
  }
  SECTION("with marketing_email consent") {
    const auto consent = consent_for({"marketing_email"});
    auto req = make_request(profile, "email", "", now, &consent);
    req.current = &current;
    const decision d = p->decide(req);
    REQUIRE(first_action(d) == "cart_email");
    CHECK(d.actions[0].placement.empty());
  }
  SECTION("after three emails this week") {
    profile_builder full = b;
    full.shown("other_email", now - 6 * 24h, "email", "")
        .shown("other_email", now - 3 * 24h, "email", "")
        .shown("other_email", now - 25h, "email", "");
    auto crowded = full.build();
    const auto consent = consent_for({"marketing_email"});
    auto req = make_request(crowded, "email", "", now, &consent);
    req.current = &current;
    const decision d = p->decide(req);
    CHECK(d.actions.empty());
    CHECK(entry_for(d, "cart_email").why == reason::contact_policy);
  }
}
