// One accepted message as journaled for its profile: what replay must re-apply to
// the snapshot to rebuild the state. Plain data; only the parts the message carried
// are set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policies/profile.hpp"

namespace nudge::storage {

/// A schedule's timer armed (due set) or disarmed (due empty) by a message.
struct timer_change {
  std::string schedule_id;
  std::optional<policies::timestamp> due;
  std::string message_id;  ///< the arming message
};

struct journal_entry {
  std::uint64_t seq = 0;  ///< per-profile, strictly increasing
  std::string message_id;
  std::string source;
  policies::timestamp received{};
  std::optional<policies::event_record> event;
  std::vector<policies::trait> traits;
  std::vector<policies::identity> identities_added;
  std::vector<policies::consent_record> consent;
  std::optional<policies::decision_record> decision;
  std::vector<timer_change> timers;  ///< applied in order, after everything else
};

}  // namespace nudge::storage
