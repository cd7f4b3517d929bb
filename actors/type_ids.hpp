// CAF message types and atoms of the actor layer. Every type here travels only
// inside the process (envelopes carry reply sinks), so none is serialisable.
#pragma once

#include "actors/handover.hpp"
#include "actors/message.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/type_id.hpp>

CAF_BEGIN_TYPE_ID_BLOCK(nudge, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(nudge, (nudge::actors::envelope_ptr))
  CAF_ADD_TYPE_ID(nudge, (nudge::actors::handover_ptr))
  CAF_ADD_ATOM(nudge, nudge::actors, apply_atom, "apply")
  CAF_ADD_ATOM(nudge, nudge::actors, passivate_atom, "passivate")
  CAF_ADD_ATOM(nudge, nudge::actors, reload_atom, "reload")
  CAF_ADD_ATOM(nudge, nudge::actors, settled_atom, "settled")
  CAF_ADD_ATOM(nudge, nudge::actors, idle_atom, "idle")
  CAF_ADD_ATOM(nudge, nudge::actors, handover_atom, "handover")
  CAF_ADD_ATOM(nudge, nudge::actors, drain_atom, "drain")
  CAF_ADD_ATOM(nudge, nudge::actors, has_decision_atom, "hasdec")
CAF_END_TYPE_ID_BLOCK(nudge)

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(nudge::actors::envelope_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(nudge::actors::handover_ptr)
