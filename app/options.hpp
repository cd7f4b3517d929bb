// What the other layers need from a validated config, as their own plain-data option
// structs. Pure functions of the config (the blocked-value regexes are compiled here;
// load_config has already checked that each compiles). Any thread.
#pragma once

#include "app/config.hpp"
#include "net/gateway_options.hpp"
#include "policies/policy.hpp"

namespace nudge::app {

/// The configured purposes and identity types, which policies are validated against.
policies::policy_limits policy_limits_for(const config& cfg);

/// Limits, identity rules (sorted by priority, highest first), stream and webhook
/// sources, admin token and policy limits for the gateway.
net::gateway_options gateway_options_for(const config& cfg);

}  // namespace nudge::app
