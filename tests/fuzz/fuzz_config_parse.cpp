// Fuzzes `nudge serve --config FILE`: parse and validate a TOML file with every
// feature gate lifted (so that the parsers of gated keys run too), and, when it is
// accepted, derive the gateway options and policy limits from it as serve does.
#include "app/config.hpp"
#include "app/options.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nudge::fuzz::lift_feature_gates();
  nudge::app::config cfg;
  auto err = nudge::app::parse_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml", cfg);
  if (err) {
    if (err->message.empty())
      __builtin_trap();  // a refusal always says why
    return 0;
  }
  (void)nudge::app::gateway_options_for(cfg);
  (void)nudge::app::policy_limits_for(cfg);
  return 0;
}
