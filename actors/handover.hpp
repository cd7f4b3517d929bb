// What a merged-away profile actor hands to the survivor of a merge: its whole
// state, its latest replies (for idempotency) and its live connections (pushes
// follow the person). Travels once, inside the process, as a shared_ptr.
#pragma once

#include "actors/message.hpp"
#include "policies/profile.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace nudge::actors {

/// One of a profile's latest replies, for idempotency: key is source + '\0' + id;
/// `hash` (of key) is compared first so that a miss costs no string compare.
struct recent_reply {
  std::size_t hash = 0;
  std::string key;
  std::string reply;
  /// The record's sequence number: once the journal has committed it, the dedupe
  /// table answers for it and the entry leaves memory. Max: kept until evicted.
  std::uint64_t seq = ~std::uint64_t{0};
};

struct handover {
  policies::profile_state state;
  std::vector<recent_reply> recent;
  std::vector<std::weak_ptr<reply_sink>> attached;
};

using handover_ptr = std::shared_ptr<const handover>;

}  // namespace nudge::actors
