// The CAF execution unit of the calling thread, for messages that threads outside
// CAF's scheduler send to actors. A thread that runs actors itself (the gateway's I/O
// thread: net/io_unit.hpp) installs its unit; a message sent from it to an idle actor
// then runs that actor on this thread (caf::scheduled_actor::enqueue hands an actor it
// unblocks to the sender's unit) instead of waking a scheduler worker. Elsewhere the
// unit is null and CAF's scheduler runs the actor, as caf::anon_send does.
#pragma once

#include <caf/actor.hpp>
#include <caf/execution_unit.hpp>

#include <utility>

namespace nudge::actors {

/// The calling thread's unit, or null.
caf::execution_unit* local_unit() noexcept;
/// Installs `unit` (null: none) for the calling thread; `unit` must outlive its use.
void set_local_unit(caf::execution_unit* unit) noexcept;

/// caf::anon_send through the calling thread's unit.
template <class... Ts>
void send_here(const caf::actor& dest, Ts&&... xs) {
  if (dest)
    dest->eq_impl(caf::make_message_id(), nullptr, local_unit(), std::forward<Ts>(xs)...);
}

}  // namespace nudge::actors
