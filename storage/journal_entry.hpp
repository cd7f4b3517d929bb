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
};

}  // namespace nudge::storage
