// One armed timer as the due-time index stores it (storage/timer_table.hpp).
#pragma once

#include <string>

#include "policies/profile.hpp"

namespace nudge::storage {

struct timer_key {
  policies::timestamp due{};
  std::string profile_id;
  std::string schedule_id;

  friend bool operator==(const timer_key&, const timer_key&) = default;
};

}  // namespace nudge::storage
