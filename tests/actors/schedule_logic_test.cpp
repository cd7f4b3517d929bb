// Arming, re-arming, cancelling and firing of schedule timers (POLICY.md Schedules),
// on plain profile states and a compiled policy.
#include "actors/profile_logic.hpp"
#include "actors/schedule_logic.hpp"

#include <catch2/catch.hpp>

namespace nudge::actors {
namespace {

using namespace std::chrono_literals;
using policies::timestamp;

const timestamp t0{std::chrono::milliseconds(1'800'000'000'000)};

std::shared_ptr<const policies::policy> compiled() {
  auto res = policies::compile(R"({"version": "s-1",
    "actions": [{"id": "cart_email", "channels": ["email"], "payload": {}},
                {"id": "banner", "channels": ["web"]}],
    "fallback": {"id": "house", "channels": ["email", "web"]},
    "schedules": [{"id": "abandoned_cart", "on": "cart_add", "after": "45m",
                   "cancel_on": ["purchase", "cart_clear"], "emit": "cart_abandoned", "channel": "email"},
                  {"id": "winback", "on": "purchase", "after": "30d", "emit": "winback_due", "channel": "email"}]})",
                               policies::policy_limits{});
  REQUIRE(res.problems.empty());
  return res.compiled;
}

inbound event(std::string id, std::string name) {
  inbound m;
  m.kind = message_kind::event;
  m.id = std::move(id);
  m.name = std::move(name);
  return m;
}

/// Applies `m`'s timer changes as a profile actor would.
void apply(policies::profile_state& p, const policies::policy& pol, const inbound& m, timestamp at,
           bool analytics = true) {
  apply_timer_changes(p, timer_changes(p, pol, m, analytics, at));
}

TEST_CASE("an on event arms, a second re-arms (one timer per schedule), a cancel_on event disarms", "[actors][schedule]") {
  auto pol = compiled();
  policies::profile_state p;
  p.id = "p-1";
  apply(p, *pol, event("e-1", "cart_add"), t0);
  REQUIRE(p.timers.size() == 1);
  CHECK(p.timers[0].schedule_id == "abandoned_cart");
  CHECK(p.timers[0].due == t0 + 45min);
  CHECK(p.timers[0].message_id == "e-1");

  auto before = p.timers;
  apply(p, *pol, event("e-2", "cart_add"), t0 + 10min);
  REQUIRE(p.timers.size() == 1);
  CHECK(p.timers[0].due == t0 + 55min);
  std::vector<storage::timer_key> erases, puts;
  timer_writes(p, before, erases, puts);
  CHECK(erases == std::vector<storage::timer_key>{{t0 + 45min, "p-1", "abandoned_cart"}});
  CHECK(puts == std::vector<storage::timer_key>{{t0 + 55min, "p-1", "abandoned_cart"}});

  // A purchase cancels the cart timer and arms its own schedule.
  apply(p, *pol, event("e-3", "purchase"), t0 + 20min);
  REQUIRE(p.timers.size() == 1);
  CHECK(p.timers[0].schedule_id == "winback");
}

TEST_CASE("without analytics nothing is armed, and withdrawing analytics disarms all", "[actors][schedule][consent]") {
  auto pol = compiled();
  policies::profile_state p;
  apply(p, *pol, event("e-1", "cart_add"), t0, false);
  CHECK(p.timers.empty());
  apply(p, *pol, event("e-2", "cart_add"), t0);
  apply(p, *pol, event("e-3", "purchase"), t0);
  apply(p, *pol, event("e-4", "cart_add"), t0);
  REQUIRE(p.timers.size() == 2);
  inbound c;
  c.kind = message_kind::consent;
  c.consent = {{"marketing_email", false, std::nullopt}};
  apply(p, *pol, c, t0);
  CHECK(p.timers.size() == 2);
  c.consent = {{"analytics", false, std::nullopt}};
  apply(p, *pol, c, t0);
  CHECK(p.timers.empty());
}

TEST_CASE("a firing is accepted only for the timer armed at that due time, and disarms it", "[actors][schedule]") {
  auto pol = compiled();
  policies::profile_state p;
  apply(p, *pol, event("e-1", "cart_add"), t0);
  inbound fire;
  fire.kind = message_kind::fire;
  fire.schedule_id = "abandoned_cart";
  fire.due = t0 + 44min;
  CHECK_FALSE(accept_fire(p, *pol, fire));  // re-armed or stale
  fire.due = t0 + 45min;
  REQUIRE(accept_fire(p, *pol, fire));
  CHECK(fire.name == "cart_abandoned");
  CHECK(fire.channel == "email");
  apply(p, *pol, fire, t0 + 45min);
  CHECK(p.timers.empty());
  CHECK_FALSE(accept_fire(p, *pol, fire));  // a second delivery of the same firing
}

TEST_CASE("the outbox body adds the channel and only the identities the channel needs", "[actors][schedule]") {
  policies::profile_state p;
  p.identities = {{"anonymous_id", "a-1"}, {"email", "jane@example.com"}, {"phone", "sha256:ab"}};
  std::string body;
  REQUIRE(outbox_body(p, "email", R"({"type":"decision","id":null})", body));
  CHECK(body == R"({"type":"decision","id":null,"channel":"email","identities":{"email":"jane@example.com"}})");
  REQUIRE(outbox_body(p, "crm", R"({"id":null})", body));
  CHECK(body == R"({"id":null,"channel":"crm","identities":{"anonymous_id":"a-1","email":"jane@example.com","phone":"sha256:ab"}})");
  CHECK_FALSE(outbox_body(p, "push", R"({"id":null})", body));  // no device_id: nothing to send
}

TEST_CASE("merging unites timers, the later due winning per schedule", "[actors][schedule][merge]") {
  profile_options opt;
  policies::profile_state s, l;
  s.timers = {{"abandoned_cart", t0 + 1min, "e-1"}};
  l.timers = {{"abandoned_cart", t0 + 5min, "e-2"}, {"winback", t0 + 30min, "e-3"}};
  merge_profiles(s, l, opt, t0);
  REQUIRE(s.timers.size() == 2);
  CHECK(s.timers[0].due == t0 + 5min);
  CHECK(s.timers[1].schedule_id == "winback");
}

}  // namespace
}  // namespace nudge::actors
