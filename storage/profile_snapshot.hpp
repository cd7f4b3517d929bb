// A profile's state as stored in the profiles table: the state and the last journal
// sequence number it includes (replay starts after it). Plain data.
#pragma once

#include <cstdint>

#include "policies/profile.hpp"

namespace nudge::storage {

struct profile_snapshot {
  policies::profile_state state;
  std::uint64_t seq = 0;  ///< last journal seq included in `state`
};

}  // namespace nudge::storage
