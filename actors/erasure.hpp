// Erasure of one profile (API.md section 5, "Erasure"): what the journal writer
// deletes in ONE commit, and what it counts. Built by the profile actor (which knows
// the identities), applied by the writer (journal.cpp), answered after the commit.
#pragma once

#include "policies/profile.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace nudge::storage {
class write_txn;
}

namespace nudge::actors {

/// What one erasure removed, filled by apply_erasure on the writer thread.
struct erasure_counts {
  std::size_t profiles = 0;    ///< snapshot (0 when the profile was never snapshotted)
  std::size_t identities = 0;  ///< identity index entries that named the profile
  std::size_t journal = 0;
  std::size_t dedupe = 0;
  std::size_t aliases = 0;     ///< aliases from or to the profile and the ids merged into it
  std::size_t audit = 0;
  std::size_t expiry = 0;
  std::size_t suppressed = 0;  ///< identity hashes added to the suppression list
  // HOOK(sched): timers and outbox entries, counted when the lead wires them in.
  std::size_t timers = 0;
  std::size_t outbox = 0;
};

struct erasure_request {
  std::string profile_id;
  std::vector<policies::identity> identities;  ///< the profile's identities
  std::vector<std::string> merged_from;        ///< ids merged into it (their traces go too)
  std::vector<std::string> suppress_hashes;    ///< keyed hashes to suppress (may be empty)
  std::string erasure_id;                      ///< random, names no one
  std::string reason;                          ///< "request" or "anonymous_ttl"
  policies::timestamp ts{};
  erasure_counts counts;                       ///< output
};

/// Deletes everything stored about req.profile_id and appends the one erasure audit
/// record (no personal data). Re-runnable (the counts restart): env::commit may run
/// it twice when the map grows. Writer thread, inside env::commit.
void apply_erasure(storage::write_txn& tx, erasure_request& req);

/// `{"erased": true, "profile_id": ..., "erasure_id": ..., "suppressed": bool,
/// "removed": {...counts}}`, the DELETE reply.
std::string erasure_reply_json(const erasure_request& req);

}  // namespace nudge::actors
