#include "tests/fuzz/fuzz_support.hpp"

#include "app/options.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace nudge::fuzz {

void lift_feature_gates() {
  static const bool lifted = [] {
    for (const auto& key : app::not_yet_supported_keys())
      app::set_supported(key);
    return true;
  }();
  (void)lifted;
}

const app::config& example_config() {
  static const app::config cfg = [] {
    lift_feature_gates();
    std::ifstream in(NUDGE_SOURCE_DIR "/deploy/nudge.toml", std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    app::config c;
    if (auto err = app::parse_config(text.str(), "nudge.toml", c)) {
      std::fprintf(stderr, "%s\n", err->message.c_str());
      std::abort();
    }
    return c;
  }();
  return cfg;
}

const net::gateway_options& example_gateway_options() {
  static const net::gateway_options opts = app::gateway_options_for(example_config());
  return opts;
}

}  // namespace nudge::fuzz
