// Fuzzes PUT /v1/policy: parse, validate and compile a policy document against the
// example config's purposes and identity types; when it compiles, evaluate it for a
// profile holding one event, with explain, as a profile actor would.
#include "app/options.hpp"
#include "policies/policy.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nudge::policies;
  static const policy_limits limits = nudge::app::policy_limits_for(nudge::fuzz::example_config());
  auto res = compile(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!res.compiled) {
    if (res.problems.empty())
      __builtin_trap();  // a refusal always says why
    return 0;
  }
  timestamp now{std::chrono::milliseconds{1'790'000'000'000}};
  const property props[] = {{"category", std::string("shoes")}, {"price", 42.0}};
  event_record ev("e-1", "page_view", now - std::chrono::minutes(5), "web", props);
  profile_state profile;
  profile.history.push_back(ev);
  std::vector<bool> consent(limits.purposes.size(), true);
  decide_request req;
  req.profile = &profile;
  req.current = &profile.history.back();
  req.channel = "web";
  req.now = now;
  req.consent = &consent;
  req.explain = true;
  (void)res.compiled->decide(req);
  return 0;
}
