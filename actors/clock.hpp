// The wall clock at the resolution nudge stores (policies::timestamp: milliseconds).
#pragma once

#include "policies/profile.hpp"

#include <chrono>

namespace nudge::actors {

inline policies::timestamp now_ms() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

}  // namespace nudge::actors
