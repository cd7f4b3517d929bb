// Each condition shape and each OP, evaluated through a one-action policy.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <map>

using namespace nudge::policies;
using namespace nudge::policies::test;

namespace {

struct harness {
  std::string segments = "{}";
  std::string models = "{}";
  std::string params = R"({"sku": "SKU-42"})";
  const event_record* current = nullptr;
  std::string channel = "web";
  std::string placement;
  std::vector<bool> consent = consent_for({"analytics", "personalization", "marketing_email",
                                           "marketing_sms", "marketing_push"});

  /// Whether `condition` holds for `profile` at `now` (the when of the only action).
  bool holds(const std::string& condition, const profile_state& profile, timestamp now = t0()) {
    const std::string doc = R"({"version": "t", "segments": )" + segments + R"(, "models": )" +
                            models + R"(, "actions": [{"id": "a", "channels": ["web", "support"],
                            "params": )" + params + R"(, "when": )" + condition + "}]}";
    std::string problems;
    auto p = compile_ok(doc, &problems);
    INFO(problems);
    REQUIRE(p);
    auto req = make_request(profile, channel, placement, now, &consent);
    req.current = current;
    const decision d = p->decide(req);
    return !d.actions.empty();
  }
};

profile_state empty_profile() { return profile_builder{}.build(); }

}  // namespace

TEST_CASE("all, any and not combine conditions", "[policies][conditions]") {
  harness h;
  const auto p = empty_profile();
  const std::string yes = R"({"channel": "web"})";
  const std::string no = R"({"channel": "email"})";
  CHECK(h.holds(R"({"all": []})", p));
  CHECK_FALSE(h.holds(R"({"any": []})", p));
  CHECK(h.holds(R"({"all": [)" + yes + "," + yes + "]}", p));
  CHECK_FALSE(h.holds(R"({"all": [)" + yes + "," + no + "]}", p));
  CHECK(h.holds(R"({"any": [)" + no + "," + yes + "]}", p));
  CHECK_FALSE(h.holds(R"({"any": [)" + no + "," + no + "]}", p));
  CHECK(h.holds(R"({"not": )" + no + "}", p));
  CHECK_FALSE(h.holds(R"({"not": )" + yes + "}", p));
}

TEST_CASE("an event condition counts retained events, at least one by default",
          "[policies][conditions]") {
  harness h;
  const auto now = t0();
  const auto p = profile_builder{}
                     .event("view", now - 3 * 24h)
                     .event("view", now - 2h)
                     .event("view", now - 10min)
                     .build();
  CHECK(h.holds(R"({"event": "view"})", p));
  CHECK_FALSE(h.holds(R"({"event": "click"})", p));
  CHECK(h.holds(R"({"event": "view", "eq": 3})", p));
  CHECK(h.holds(R"({"event": "view", "ne": 2})", p));
  CHECK(h.holds(R"({"event": "view", "gt": 2})", p));
  CHECK_FALSE(h.holds(R"({"event": "view", "gt": 3})", p));
  CHECK(h.holds(R"({"event": "view", "gte": 3})", p));
  CHECK(h.holds(R"({"event": "view", "lt": 4})", p));
  CHECK_FALSE(h.holds(R"({"event": "view", "lt": 3})", p));
  CHECK(h.holds(R"({"event": "view", "lte": 3})", p));
  CHECK(h.holds(R"({"event": "view", "in": [1, 3]})", p));
  CHECK_FALSE(h.holds(R"({"event": "view", "in": [1, 2]})", p));
  CHECK(h.holds(R"({"event": "click", "eq": 0})", p));
}

TEST_CASE("within keeps the events of the last duration", "[policies][conditions]") {
  harness h;
  const auto now = t0();
  const auto p = profile_builder{}
                     .event("view", now - 3 * 24h)
                     .event("view", now - 2h)
                     .event("view", now - 30min)
                     .build();
  CHECK(h.holds(R"({"event": "view", "within": "1d", "eq": 2})", p));
  CHECK(h.holds(R"({"event": "view", "within": "30m", "eq": 1})", p));  // ts >= now - 30m
  CHECK(h.holds(R"({"event": "view", "within": "1799s", "eq": 0})", p));
  CHECK(h.holds(R"({"event": "view", "within": "7d", "eq": 3})", p));
  CHECK(h.holds(R"({"event": "view", "within": "500ms", "eq": 0})", p));
  SECTION("time moves on with the injected now") {
    CHECK(h.holds(R"({"event": "view", "within": "1d", "eq": 0})", p, now + 48h));
  }
}

TEST_CASE("since keeps the events after the latest other event, all when there is none",
          "[policies][conditions]") {
  harness h;
  const auto now = t0();
  const auto p = profile_builder{}
                     .event("cart_add", now - 5h)
                     .event("purchase", now - 4h)
                     .event("cart_add", now - 3h)
                     .event("purchase", now - 2h)
                     .event("cart_add", now - 1h)
                     .build();
  CHECK(h.holds(R"({"event": "cart_add", "since": "purchase", "eq": 1})", p));
  CHECK(h.holds(R"({"event": "cart_add", "since": "never_happened", "eq": 3})", p));
  CHECK(h.holds(R"({"event": "purchase", "since": "cart_add", "eq": 0})", p));
  CHECK(h.holds(R"({"event": "cart_add", "since": "purchase", "within": "30m", "eq": 0})", p));
}

TEST_CASE("since counts an event that came after the latest other event within its timestamp",
          "[policies][conditions]") {
  // A ticket reopened within the second it was resolved (webhook times have seconds only).
  harness h;
  const auto now = t0();
  const auto p = profile_builder{}
                     .event("ticket_opened", now - 1h)
                     .event("ticket_opened", now - 1min)
                     .event("ticket_resolved", now - 1min)
                     .event("ticket_opened", now - 1min)
                     .build();
  CHECK(h.holds(R"({"event": "ticket_opened", "since": "ticket_resolved", "eq": 1})", p));
  CHECK(h.holds(R"({"event": "ticket_opened", "eq": 3})", p));
}

TEST_CASE("counts over a long history of mixed names (scanned by name tag, texts fetched ahead)",
          "[policies][conditions]") {
  harness h;
  const auto now = t0();
  profile_builder b;
  // 120 events, oldest first, a minute apart: every third a cart_add, every tenth a
  // purchase (with its price), the rest views of two categories.
  int carts = 0, purchases_last_hour = 0, shoes = 0, carts_since_purchase = 0;
  for (int i = 0; i < 120; ++i) {
    const auto ts = now - std::chrono::minutes(120 - i);
    if (i % 10 == 0) {
      b.event("purchase", ts, {{"price", 10.0}});
      purchases_last_hour += ts >= now - 1h ? 1 : 0;
      carts_since_purchase = 0;
    } else if (i % 3 == 0) {
      b.event("cart_add", ts);
      ++carts;
      ++carts_since_purchase;
    } else {
      const bool shoe = i % 2 == 0;
      b.event("product_view", ts, {{"category", std::string(shoe ? "shoes" : "hats")}});
      shoes += shoe ? 1 : 0;
    }
  }
  const auto p = b.build();
  auto eq = [](int n) { return std::to_string(n); };
  CHECK(h.holds(R"({"event": "cart_add", "eq": )" + eq(carts) + "}", p));
  CHECK(h.holds(R"({"event": "purchase", "within": "1h", "eq": )" + eq(purchases_last_hour) + "}", p));
  CHECK(h.holds(R"({"event": "purchase", "within": "1h", "sum": "price", "eq": )" + eq(10 * purchases_last_hour) + "}", p));
  CHECK(h.holds(R"({"event": "product_view", "where": {"category": "shoes"}, "eq": )" + eq(shoes) + "}", p));
  CHECK(h.holds(R"({"event": "cart_add", "since": "purchase", "eq": )" + eq(carts_since_purchase) + "}", p));
  CHECK(h.holds(R"({"event": "page_view", "eq": 0})", p));
}

TEST_CASE("names whose digests collide count apart: the owner of the slot by tag alone, the other by its text",
          "[policies][conditions]") {
  // Three fresh names with one 15-bit digest (a bounded search: a few thousand tries).
  std::map<std::uint16_t, std::vector<std::string>> seen;
  std::string owner, other, third;
  for (int i = 0; i < 1'000'000 && third.empty(); ++i) {
    std::string n = "collide-" + std::to_string(i);
    auto& names = seen[static_cast<std::uint16_t>(text_tag(n) & 0x7fff)];
    names.push_back(std::move(n));
    if (names.size() == 3) {
      owner = names[0];
      other = names[1];
      third = names[2];
    }
  }
  REQUIRE_FALSE(third.empty());
  const auto owner_key = name_key::of(owner);  // claims the slot
  const auto other_key = name_key::of(other);
  CHECK(owner_key.exact);
  CHECK_FALSE(other_key.exact);
  CHECK(owner_key.tag == (other_key.tag | name_key::exact_bit));
  CHECK(name_key::of(owner).tag == owner_key.tag);  // the slot stays its owner's
  CHECK_FALSE(name_key::of("").exact);              // the empty name claims none

  harness h;
  const auto now = t0();
  profile_builder b;
  // 40 events a minute apart: every fourth the owner's name, every fourth after it the
  // third's (which shares the other's tag), the rest the other's (each of the first two
  // names also serves as the other's `since`).
  int owners = 0, others = 0, owners_after_other = 0;
  for (int i = 0; i < 40; ++i) {
    const auto ts = now - std::chrono::minutes(40 - i);
    if (i % 4 == 0) {
      b.event(owner, ts);
      ++owners;
      ++owners_after_other;
    } else if (i % 4 == 1) {
      b.event(third, ts);
    } else {
      b.event(other, ts);
      ++others;
      owners_after_other = 0;
    }
  }
  const auto p = b.build();
  REQUIRE(p.history.front().name_tag() == owner_key.tag);
  REQUIRE(p.history[1].name_tag() == other_key.tag);
  auto eq = [](int n) { return std::to_string(n); };
  CHECK(h.holds(R"({"event": ")" + owner + R"(", "eq": )" + eq(owners) + "}", p));
  CHECK(h.holds(R"({"event": ")" + other + R"(", "eq": )" + eq(others) + "}", p));
  CHECK(h.holds(R"({"event": ")" + owner + R"(", "since": ")" + other + R"(", "eq": )" + eq(owners_after_other) + "}", p));
  CHECK(h.holds(R"({"event": ")" + other + R"(", "since": ")" + owner + R"(", "eq": 2})", p));
  CHECK(h.holds(R"({"event": ")" + third + R"(", "eq": 10})", p));
}

TEST_CASE("where filters events by property literal, operator, current and param",
          "[policies][conditions]") {
  harness h;
  const auto now = t0();
  const auto p = profile_builder{}
                     .event("purchase", now - 2h,
                            {{"sku", std::string("SKU-42")}, {"price", 30.0}, {"item.color", std::string("red")}})
                     .event("purchase", now - 1h, {{"sku", std::string("SKU-7")}, {"price", 80.0}})
                     .build();
  CHECK(h.holds(R"({"event": "purchase", "where": {"sku": "SKU-42"}, "eq": 1})", p));
  CHECK(h.holds(R"({"event": "purchase", "where": {"item.color": "red"}, "eq": 1})", p));
  CHECK(h.holds(R"({"event": "purchase", "where": {"price": {"gt": 50}}, "eq": 1})", p));
  CHECK(h.holds(R"({"event": "purchase", "where": {"price": {"gte": 30, "lt": 80}}, "eq": 1})", p));
  CHECK(h.holds(R"({"event": "purchase", "where": {"sku": {"in": ["SKU-7", "SKU-9"]}}, "eq": 1})", p));
  CHECK(h.holds(R"({"event": "purchase", "where": {"coupon": {"exists": false}}, "eq": 2})", p));
  CHECK(h.holds(R"({"event": "purchase", "where": {"sku": {"ne": "SKU-7"}}, "eq": 1})", p));
  CHECK(h.holds(R"({"event": "purchase", "where": {"sku": {"$param": "sku"}}, "eq": 1})", p));
  CHECK(h.holds(R"({"event": "purchase", "where": {"price": "30"}, "eq": 0})", p));  // type mismatch

  SECTION("$current compares with the message being decided") {
    const event_record view = make_event("product_view", now, {{"sku", std::string("SKU-7")}});
    h.current = &view;
    CHECK(h.holds(R"({"event": "purchase", "where": {"sku": {"$current": "sku"}}, "eq": 1})", p));
    CHECK(h.holds(R"({"event": "purchase", "where": {"sku": {"$current": "missing"}}, "eq": 0})", p));
  }
  SECTION("$current without a current message never matches") {
    CHECK(h.holds(R"({"event": "purchase", "where": {"sku": {"$current": "sku"}}, "eq": 0})", p));
  }
}

TEST_CASE("sum measures a numeric property", "[policies][conditions]") {
  harness h;
  const auto now = t0();
  const auto p = profile_builder{}
                     .event("purchase", now - 400 * 24h, {{"price", 1000.0}})
                     .event("purchase", now - 100 * 24h, {{"price", 300.0}})
                     .event("purchase", now - 24h, {{"price", 250.0}})
                     .event("purchase", now - 2h, {{"price", std::string("n/a")}})
                     .build();
  CHECK(h.holds(R"({"event": "purchase", "within": "365d", "sum": "price", "gte": 500})", p));
  CHECK(h.holds(R"({"event": "purchase", "within": "365d", "sum": "price", "eq": 550})", p));
  CHECK_FALSE(h.holds(R"({"event": "purchase", "within": "30d", "sum": "price", "gte": 500})", p));
}

TEST_CASE("current matches the message being decided", "[policies][conditions]") {
  harness h;
  const auto now = t0();
  const auto p = empty_profile();
  CHECK_FALSE(h.holds(R"({"current": {"name": "cart_abandoned"}})", p));
  const event_record e = make_event("cart_abandoned", now, {{"value", 42.0}});
  h.current = &e;
  CHECK(h.holds(R"({"current": {"name": "cart_abandoned"}})", p));
  CHECK(h.holds(R"({"current": {"name": ["page_view", "cart_abandoned"]}})", p));
  CHECK_FALSE(h.holds(R"({"current": {"name": "page_view"}})", p));
  CHECK(h.holds(R"({"current": {"name": "cart_abandoned", "where": {"value": {"gt": 40}}}})", p));
  CHECK_FALSE(h.holds(R"({"current": {"name": "cart_abandoned", "where": {"value": {"gt": 50}}}})", p));
  CHECK(h.holds(R"({"current": {}})", p));
}

TEST_CASE("trait comparisons follow each operator", "[policies][conditions]") {
  harness h;
  const auto p = profile_builder{}
                     .trait("tier", std::string("gold"))
                     .trait("age", 30.0)
                     .trait("vip", true)
                     .build();
  CHECK(h.holds(R"({"trait": "tier", "eq": "gold"})", p));
  CHECK_FALSE(h.holds(R"({"trait": "tier", "eq": "silver"})", p));
  CHECK(h.holds(R"({"trait": "tier", "ne": "silver"})", p));
  CHECK(h.holds(R"({"trait": "age", "gt": 29})", p));
  CHECK_FALSE(h.holds(R"({"trait": "age", "gt": 30})", p));
  CHECK(h.holds(R"({"trait": "age", "gte": 30})", p));
  CHECK(h.holds(R"({"trait": "age", "lt": 31})", p));
  CHECK_FALSE(h.holds(R"({"trait": "age", "lt": 30})", p));
  CHECK(h.holds(R"({"trait": "age", "lte": 30})", p));
  CHECK(h.holds(R"({"trait": "age", "gte": 18, "lt": 65})", p));
  CHECK(h.holds(R"({"trait": "tier", "in": ["silver", "gold"]})", p));
  CHECK_FALSE(h.holds(R"({"trait": "tier", "in": ["silver"]})", p));
  CHECK(h.holds(R"({"trait": "vip", "eq": true})", p));
  CHECK(h.holds(R"({"trait": "tier", "exists": true})", p));
  CHECK_FALSE(h.holds(R"({"trait": "tier", "exists": false})", p));
  CHECK(h.holds(R"({"trait": "tier", "gt": "bronze"})", p));  // strings: lexicographic

  SECTION("a missing trait is false for every operator but exists false") {
    CHECK_FALSE(h.holds(R"({"trait": "missing", "eq": "x"})", p));
    CHECK_FALSE(h.holds(R"({"trait": "missing", "ne": "x"})", p));
    CHECK_FALSE(h.holds(R"({"trait": "missing", "lt": 5})", p));
    CHECK_FALSE(h.holds(R"({"trait": "missing", "in": ["x"]})", p));
    CHECK_FALSE(h.holds(R"({"trait": "missing", "exists": true})", p));
    CHECK(h.holds(R"({"trait": "missing", "exists": false})", p));
  }
  SECTION("a type mismatch is false") {
    CHECK_FALSE(h.holds(R"({"trait": "age", "eq": "30"})", p));
    CHECK_FALSE(h.holds(R"({"trait": "age", "ne": "30"})", p));
    CHECK_FALSE(h.holds(R"({"trait": "tier", "gt": 3})", p));
  }
}

TEST_CASE("stats compare counts and ages as durations", "[policies][conditions]") {
  harness h;
  const auto now = t0();
  const auto p = profile_builder{}.event("a", now - 10 * 24h).event("b", now - 2h).build();
  CHECK(h.holds(R"({"stat": "event_count", "eq": 2})", p));
  CHECK(h.holds(R"({"stat": "event_count", "lte": 2})", p));
  CHECK_FALSE(h.holds(R"({"stat": "event_count", "gt": 2})", p));
  CHECK(h.holds(R"({"stat": "first_seen_ago", "gte": "7d"})", p));
  CHECK_FALSE(h.holds(R"({"stat": "first_seen_ago", "gte": "11d"})", p));
  CHECK(h.holds(R"({"stat": "last_seen_ago", "lt": "3h"})", p));
  CHECK_FALSE(h.holds(R"({"stat": "last_seen_ago", "lt": "1h"})", p));
  CHECK_FALSE(h.holds(R"({"stat": "last_seen_ago", "lt": "1h"})", empty_profile()));
}

TEST_CASE("a segment condition evaluates the segment, with the action's params",
          "[policies][conditions]") {
  harness h;
  h.segments = R"({"bought_it": {"event": "purchase", "where": {"sku": {"$param": "sku"}}},
                   "gold": {"trait": "tier", "eq": "gold"},
                   "gold_buyer": {"all": [{"segment": "gold"}, {"segment": "bought_it"}]}})";
  const auto now = t0();
  const auto p = profile_builder{}
                     .trait("tier", std::string("gold"))
                     .event("purchase", now - 1h, {{"sku", std::string("SKU-42")}})
                     .build();
  CHECK(h.holds(R"({"segment": "gold"})", p));
  CHECK(h.holds(R"({"segment": "gold_buyer"})", p));
  h.params = R"({"sku": "SKU-1"})";
  CHECK_FALSE(h.holds(R"({"segment": "gold_buyer"})", p));
}

TEST_CASE("a score condition compares a logistic model's score", "[policies][conditions]") {
  harness h;
  h.models = R"({"m": {"type": "logistic", "bias": -1.0, "features": [
      {"weight": 0.5, "x": {"event": "view", "within": "1d"}},
      {"weight": 0.01, "x": {"event": "purchase", "sum": "price"}},
      {"weight": 2.0, "x": {"trait": "tier", "eq": "gold"}},
      {"weight": -3.0, "x": {"identity": "email"}}]}})";
  const auto now = t0();
  const auto p = profile_builder{}
                     .event("view", now - 2h)
                     .event("view", now - 1h)
                     .event("view", now - 3 * 24h)
                     .event("purchase", now - 5h, {{"price", 40.0}})
                     .trait("tier", std::string("gold"))
                     .build();
  // z = -1 + 0.5*2 + 0.01*40 + 2*1 - 3*0 = 2.4
  const double score = 1.0 / (1.0 + std::exp(-2.4));
  CHECK(score == Approx(0.916827).epsilon(1e-5));
  CHECK(h.holds(R"({"score": "m", "gte": 0.9168})", p));
  CHECK_FALSE(h.holds(R"({"score": "m", "gte": 0.9169})", p));
  CHECK(h.holds(R"({"score": "m", "lt": 0.92})", p));
}

TEST_CASE("channel, placement, identity and consent conditions", "[policies][conditions]") {
  harness h;
  const auto p = profile_builder{}.identity("email", "sha256:abc").build();
  CHECK(h.holds(R"({"channel": "web"})", p));
  CHECK(h.holds(R"({"channel": ["mobile", "web"]})", p));
  CHECK_FALSE(h.holds(R"({"placement": "banner"})", p));
  h.placement = "banner";
  CHECK(h.holds(R"({"placement": "banner"})", p));
  CHECK(h.holds(R"({"placement": ["modal", "banner"]})", p));
  CHECK_FALSE(h.holds(R"({"placement": "modal"})", p));
  CHECK(h.holds(R"({"identity": "email"})", p));
  CHECK_FALSE(h.holds(R"({"identity": "phone"})", p));
  CHECK(h.holds(R"({"consent": "analytics"})", p));
  h.consent = consent_for({"personalization"});
  CHECK_FALSE(h.holds(R"({"consent": "analytics"})", p));
}
