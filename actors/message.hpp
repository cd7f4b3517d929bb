// A validated inbound message (API.md section 3) and where its reply goes.
// Built by the gateway on a Beast thread, then owned by exactly one profile actor.
#pragma once

#include "actors/recycling_allocator.hpp"
#include "policies/profile.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nudge::actors {

/// `fire`: a schedule's timer came due (actors/timer_service); it has no sink.
/// `checkpoint`: the journal asks the profile for a snapshot (journal_options).
enum class message_kind { event, consent, feedback, decide, get_profile, export_profile, audit_profile, erase_profile, fire,
                          checkpoint };
enum class wire_format { json, msgpack };

class reply_sink;

/// A thread that many sinks deliver on (one of the gateway's I/O threads). The journal
/// hands it every reply of one commit for its sinks at once: one cross-thread hand-off (and at most
/// one wake-up) per commit instead of one per reply.
class reply_lane {
public:
  struct item {
    std::shared_ptr<reply_sink> sink;
    std::size_t slot;
    std::string bytes;
    int status;
  };
  virtual ~reply_lane() = default;
  /// Runs every item's sink->deliver_here() on the lane's thread, in order. Any thread.
  virtual void post(std::vector<item> items) = 0;
};

/// Receives the encoded reply of one message. Implementations post to their own
/// executor (a Beast strand); deliver() may be called from any thread, exactly once
/// per message.
class reply_sink {
public:
  virtual ~reply_sink() = default;
  /// `slot` is the position of the message in its HTTP batch (0 on a stream);
  /// `status` an HTTP status hint (200 for success).
  virtual void deliver(std::size_t slot, std::string bytes, int status) = 0;
  /// The lane deliveries to this sink may travel in; null: deliver() one by one.
  virtual reply_lane* lane() const noexcept { return nullptr; }
  /// deliver(), called on the lane's thread.
  virtual void deliver_here(std::size_t slot, std::string bytes, int status) { deliver(slot, std::move(bytes), status); }
  /// A live connection's channel, to which decisions arising without a request on it
  /// are pushed; empty for sinks that take no pushes (HTTP requests).
  virtual std::string_view push_channel() const noexcept { return {}; }
  /// Sends a push (a JSON decision with "id": null). Any thread.
  virtual void push(std::string /*json*/) {}
};

struct consent_change {
  std::string purpose;
  bool granted = false;
  std::optional<policies::timestamp> expires;
};

struct inbound {
  message_kind kind = message_kind::event;
  std::string id;
  std::string source;
  std::string name;
  std::optional<policies::timestamp> ts;
  std::vector<policies::identity> identities;        ///< normalised, blocked ones dropped
  std::vector<policies::identity> identities_added;  ///< those that belong to the resolved profile
  /// Resolution's side of the message (identity_resolver::result): profiles the
  /// target must absorb first, links given up for a limit, and the ticket that
  /// releases the resolver's pending entries once the message's record is settled.
  std::vector<std::string> merge_from;
  std::vector<policies::identity> given_up;
  std::uint64_t resolution_ticket = 0;
  /// Identity values dropped as blocked placeholders (counted in /metrics).
  std::uint32_t blocked_identities = 0;
  std::string channel;
  std::string placement;
  std::vector<policies::property> properties;
  std::vector<policies::trait> traits;
  std::vector<consent_change> consent;
  std::string consent_source;
  std::string decision_id;
  std::string action;
  std::string outcome;
  bool explain = false;
  /// Sent by an operator (PUT /v1/profiles/{id}/consent): answered with the consent state.
  bool admin = false;
  /// `fire` only: the schedule and the due time of the timer that fired.
  std::string schedule_id;
  policies::timestamp due{};
  /// erase_profile: also suppress the identities; why ("request", "anonymous_ttl").
  bool suppress = false;
  std::string erase_reason;
};

/// An inbound message with its reply route.
struct envelope {
  inbound msg;
  std::shared_ptr<reply_sink> sink;
  std::size_t slot = 0;
  wire_format format = wire_format::json;
};

using envelope_ptr = std::shared_ptr<envelope>;

/// A new envelope; its block (with the shared_ptr's count) is recycled per thread.
inline envelope_ptr make_envelope() {
  return std::allocate_shared<envelope>(recycling_allocator<envelope>{});
}

}  // namespace nudge::actors
