// `nudge serve`: the composition root. Builds storage, the actor system, the
// journal writer and the gateway from a validated config, serves until SIGTERM or
// SIGINT, then shuts down in order (stop accepting, finish in-flight messages,
// persist active profiles, stop the writer, close storage). Returns the exit code.
#pragma once

#include "app/config.hpp"

namespace nudge::app {

int serve(config cfg);

/// `nudge policy check FILE`: 0 when valid, 2 with every problem on stderr.
int policy_check(const config& cfg, const std::filesystem::path& file);

}  // namespace nudge::app
