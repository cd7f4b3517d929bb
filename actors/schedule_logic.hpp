// Schedules (POLICY.md, Schedules) as profile actors apply them: which timers a
// message arms or disarms, whether a fired timer is still live, and what a firing
// sends to the outbox. Pure functions over the profile state; any thread.
//
// Choices where the contract is silent:
// - Arming needs `analytics` consent: an armed timer records behaviour (when the cart
//   was filled), and without analytics nothing of it is retained. Withdrawing
//   analytics disarms every timer. Disarming (`cancel_on`) needs no consent.
// - The due time is the time the `on` event is processed plus `after`, whatever its
//   own `ts`: a backfill of old events arms timers that fire `after` from now rather
//   than a burst of firings at once.
// - An event that is both `on` and `cancel_on` of a schedule re-arms it.
#pragma once

#include "actors/destination.hpp"
#include "actors/message.hpp"
#include "policies/policy.hpp"
#include "storage/journal_entry.hpp"
#include "storage/outbox_entry.hpp"
#include "storage/timer_key.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace nudge::actors {

/// The timer changes of `m` for a profile in state `p` (before `m` is applied):
/// a `fire` disarms its own timer; an event or fire disarms the schedules it cancels
/// and arms those it starts (when `analytics`); a consent that withdraws analytics
/// disarms all. `at` is when the message is processed.
std::vector<storage::timer_change> timer_changes(const policies::profile_state& p, const policies::policy& pol,
                                                 const inbound& m, bool analytics, policies::timestamp at);

/// Applies `changes` in order (used by apply_entry, live and on replay).
void apply_timer_changes(policies::profile_state& p, const std::vector<storage::timer_change>& changes);

/// The index writes that turn the timers `before` into those of `p`.
void timer_writes(const policies::profile_state& p, const std::vector<policies::armed_timer>& before,
                  std::vector<storage::timer_key>& erases, std::vector<storage::timer_key>& puts);

/// For a `fire` message: true when `p` still holds its timer at m.due and the active
/// policy still has the schedule; then m.name and m.channel become the schedule's
/// `emit` and `channel`.
bool accept_fire(const policies::profile_state& p, const policies::policy& pol, inbound& m);

/// Whether a decision is worth sending unasked: it holds an action other than the
/// fallback (a fallback alone is not sent, not pushed).
bool worth_sending(const policies::decision& d, const policies::policy& pol);

/// The identity types a channel's destination needs: email → email, sms → phone,
/// push → device_id; any other channel: every identity of the profile (empty list).
std::vector<std::string_view> identity_types_for(std::string_view channel);

/// The POST body: `decision_json` (a decision with "trigger") plus "channel" and
/// "identities" (type → value of the types the channel needs). False when the profile
/// holds none of the types the channel needs (nothing can be sent).
bool outbox_body(const policies::profile_state& p, std::string_view channel, std::string_view decision_json,
                 std::string& body);

}  // namespace nudge::actors
