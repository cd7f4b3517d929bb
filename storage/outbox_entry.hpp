// One outbound delivery waiting in the outbox: a decision's POST body for one
// destination. Plain data. The key fields (profile, decision, destination) name it;
// `decision_id` is the receiver's idempotency key.
#pragma once

#include <cstdint>
#include <string>

#include "policies/profile.hpp"

namespace nudge::storage {

struct outbox_entry {
  std::string profile_id;
  std::string decision_id;
  std::string destination_id;
  policies::timestamp created{};
  std::string body;  ///< the JSON POSTed, exactly as signed
  std::uint32_t attempts = 0;  ///< delivery attempts that failed so far (kept across restarts)
  /// Not before this time (wall clock): the backoff after the last failed attempt, so
  /// that a restart waits it out too. Zero: at once.
  policies::timestamp next_attempt{};
};

}  // namespace nudge::storage
