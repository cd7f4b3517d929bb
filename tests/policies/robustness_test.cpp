// Corrupted documents never crash the compiler, and whatever compiles can be decided.
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace nudge::policies;
using namespace nudge::policies::test;

TEST_CASE("corrupted policies are rejected or compiled, never a crash", "[policies][robustness]") {
  const std::string original = read_text_file(NUDGE_RETAIL_POLICY);
  REQUIRE_FALSE(original.empty());
  std::mt19937_64 rng(12345);
  const std::string alphabet = "{}[]\":,0123456789abcdefghijklmnopqrstuvwxyz_-. \\/";
  const auto now = t0();
  const auto profile = profile_builder{}
                           .event("cart_add", now - 2h, {{"sku", std::string("SKU-42")}})
                           .event("purchase", now - 1h, {{"price", 600.0}})
                           .event("page_view", now)
                           .trait("tier", std::string("gold"))
                           .build();
  const auto consent = consent_for({"personalization", "marketing_email"});
  int compiled = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string doc = original;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % doc.size();
      switch (rng() % 3) {
        case 0:
          doc[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          doc.erase(at, 1 + rng() % 8);
          break;
        default:
          doc.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
      }
    }
    const auto result = compile(doc, policy_limits{});
    CHECK((result.compiled == nullptr) == !result.problems.empty());
    if (!result.compiled)
      continue;
    ++compiled;
    for (const char* channel : {"web", "email", "support"}) {
      auto req = make_request(profile, channel, "", now, &consent, true);
      const decision d = result.compiled->decide(req);
      CHECK(d.actions.size() <= result.compiled->action_count() + 1);
    }
  }
  CHECK(compiled > 0);
}
