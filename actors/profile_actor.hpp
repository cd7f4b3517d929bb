// One actor per active profile. It owns the profile's state, applies the messages
// sent to it in arrival order, decides with the active policy, and hands each
// result to the journal writer, which releases the reply after the commit. On
// start it loads the snapshot and replays the journal tail (a short LMDB read);
// after `idle_passivate` without messages it snapshots and leaves memory.
#pragma once

#include <caf/fwd.hpp>

#include <memory>
#include <string>

namespace nudge::storage {
struct profile_snapshot;
}

namespace nudge::actors {

struct context;

/// Spawns the actor of `profile_id` (which may or may not exist in storage). When
/// `parked` is set, the state starts from it (a snapshot not yet committed).
caf::actor spawn_profile(context& ctx, const std::string& profile_id,
                         std::shared_ptr<const storage::profile_snapshot> parked);

}  // namespace nudge::actors
