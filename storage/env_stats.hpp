// A point-in-time view of the LMDB environment's space and reader slots, for
// /v1/stats and /metrics. Filled by env::stats() (any thread).
#pragma once

#include <cstdint>

namespace nudge::storage {

struct env_stats {
  std::uint64_t map_size_bytes = 0;   ///< the current map size (grows up to map_size_max)
  std::uint64_t map_used_bytes = 0;   ///< pages up to the last used one, at the latest commit
  std::uint64_t allocated_bytes = 0;  ///< data.mdb bytes known allocated on disk (preallocation)
  std::uint64_t prefaulted_bytes = 0;  ///< data.mdb bytes from the start mapped writable ahead of use (0: off)
  std::uint64_t readers_in_use = 0;   ///< reader slots held now, by any process (incl. pooled handles)
  std::uint64_t readers_cleared = 0;  ///< slots of dead processes cleared since start
  std::uint64_t disk_full_refusals = 0;  ///< commits refused because allocation failed
  // The commit log ("power" durability; storage/commit_log.hpp). All 0 without it.
  std::uint64_t log_checkpoints = 0;          ///< checkpoints written since start
  std::uint64_t log_checkpoint_failures = 0;  ///< checkpoints that failed (retried later)
  std::uint64_t log_bytes_pending = 0;        ///< log bytes appended since the last checkpoint began
  std::uint64_t log_records_replayed = 0;     ///< records replayed at open
};

}  // namespace nudge::storage
