// Times decide() on the retail example against a profile with 500 history events.
// Not a test: run by hand, `policies_bench [decisions]`, and read the µs/decision.
#include "test_support.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace nudge::policies;
using namespace nudge::policies::test;

namespace {

/// Always returns room, and counts so the compiler keeps the work.
class bench_counters : public shared_counters {
public:
  bool try_reserve_global(std::size_t, timestamp) override { return true; }
  bool global_available(std::size_t, timestamp) override { return true; }
  std::pair<double, double> learned(std::size_t i) override {
    return {10.0 + static_cast<double>(i), 90.0};
  }
};

profile_state busy_profile(timestamp now) {
  static const char* const names[] = {"page_view", "product_view", "cart_add", "purchase",
                                      "support_ticket_opened", "support_ticket_resolved",
                                      "search", "action_shown"};
  profile_builder b;
  for (int i = 0; i < 500; ++i) {
    const auto ts = now - std::chrono::minutes(500 - i) * 37;
    const char* name = names[(i * 7) % 8];
    std::vector<property> props{{"sku", std::string("SKU-") + std::to_string(i % 50)},
                                {"price", 10.0 + i % 90},
                                {"category", std::string(i % 3 == 0 ? "shoes" : "shirts")}};
    if (std::string(name) == "action_shown")
      props.push_back({"action", std::string("promo_sku42")});
    b.event(name, ts, std::move(props));
  }
  for (int i = 0; i < 20; ++i)
    b.shown(i % 2 ? "cart_recovery" : "promo_sku42", now - std::chrono::hours(3 * i + 1));
  b.trait("tier", std::string("gold"));
  return b.build();
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 200000;
  const auto result = compile(read_text_file(NUDGE_RETAIL_POLICY), policy_limits{});
  if (!result.compiled) {
    std::fprintf(stderr, "retail.json does not compile:\n%s", describe(result.problems).c_str());
    return 1;
  }
  const policy& p = *result.compiled;
  const auto now = t0();
  const profile_state profile = busy_profile(now);
  const event_record current = profile.history.back();
  const auto consent = consent_for({"personalization", "marketing_email"});
  bench_counters counters;

  struct scenario {
    const char* name;
    std::string_view channel, placement;
    bool explain;
  };
  const scenario scenarios[] = {{"web/banner", "web", "banner", false},
                                {"web/banner explain", "web", "banner", true},
                                {"support/agent_panel", "support", "agent_panel", false},
                                {"email", "email", "", false}};
  std::size_t sink = 0;
  for (const auto& s : scenarios) {
    auto req = make_request(profile, s.channel, s.placement, now, &consent, s.explain);
    req.current = &current;
    req.counters = &counters;
    for (int i = 0; i < rounds / 10; ++i)  // warm-up
      sink += p.decide(req).actions.size();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) {
      req.random_seed = static_cast<std::uint64_t>(i);
      sink += p.decide(req).actions.size();
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const double us = std::chrono::duration<double, std::micro>(elapsed).count() / rounds;
    std::printf("%-22s %8.3f us/decision (%d decisions, 500 events)\n", s.name, us, rounds);
  }
  std::printf("(chosen actions: %zu)\n", sink);
  return 0;
}
