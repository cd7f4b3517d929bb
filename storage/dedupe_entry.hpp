// What the dedupe table remembers of an accepted message: when, for which profile,
// and the encoded first reply (opaque bytes, replayed with "duplicate": true).
#pragma once

#include <string>

#include "policies/profile.hpp"

namespace nudge::storage {

struct dedupe_entry {
  policies::timestamp ts{};  ///< when the message was accepted; picks the day bucket
  std::string profile_id;
  std::string reply;  ///< opaque bytes
};

}  // namespace nudge::storage
