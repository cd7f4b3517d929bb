#include "actors/local_unit.hpp"

namespace nudge::actors {

namespace {
thread_local caf::execution_unit* this_thread_unit = nullptr;
}

caf::execution_unit* local_unit() noexcept {
  return this_thread_unit;
}

void set_local_unit(caf::execution_unit* unit) noexcept {
  this_thread_unit = unit;
}

}  // namespace nudge::actors
