// Shared set-up of the fuzz targets: deploy/nudge.toml, the contract's example config
// (every identity type, the `helpdesk` webhook source with its mapping), loaded once
// with every feature gate lifted, and the gateway options derived from it exactly as
// `nudge serve` derives them. Single-threaded, like libFuzzer.
#pragma once

#include "app/config.hpp"
#include "net/gateway_options.hpp"

namespace nudge::fuzz {

/// Lifts every gate of app::not_yet_supported_keys() so that their parsers are reached.
void lift_feature_gates();

/// deploy/nudge.toml parsed by app::parse_config; aborts if it does not load.
const app::config& example_config();

/// app::gateway_options_for(example_config()), built once.
const net::gateway_options& example_gateway_options();

}  // namespace nudge::fuzz
