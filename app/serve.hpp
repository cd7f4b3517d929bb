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

/// `nudge backup DIR`: a consistent, compacted copy (mdb_env_copy2, MDB_CP_COMPACT) of
/// cfg.server.data_dir's LMDB environment in DIR/data.mdb, plus its generated key
/// files; safe while the service runs. 0 ok, 1 failure, 2 bad data dir or target.
int backup(const config& cfg, const std::filesystem::path& dir);

}  // namespace nudge::app
