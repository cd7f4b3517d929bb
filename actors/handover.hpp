// What a merged-away profile actor hands to the survivor of a merge: its whole
// state, its latest replies (for idempotency) and its live connections (pushes
// follow the person). Travels once, inside the process, as a shared_ptr.
#pragma once

#include "actors/message.hpp"
#include "policies/profile.hpp"

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace nudge::actors {

struct handover {
  policies::profile_state state;
  std::deque<std::pair<std::string, std::string>> recent;
  std::vector<std::weak_ptr<reply_sink>> attached;
};

using handover_ptr = std::shared_ptr<const handover>;

}  // namespace nudge::actors
