// The timer tables: a due-time index of armed schedule timers and, beside it, the
// owner index that finds a profile's timers.
//  - "timers":       key big-endian u64 due (ms since the epoch) + profile id + '\0' +
//                    schedule id; empty value. Key order is due order, so the next
//                    due timers are a short cursor walk from the start, never a scan.
//  - "timer_owners": key profile id + '\0' + schedule id; value the big-endian due.
// One timer per (profile, schedule): put() replaces an older due. Profile ids must
// not contain '\0'; due times before the epoch are stored as the epoch.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "storage/read_txn.hpp"
#include "storage/timer_key.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::timer_table {

/// The index key of `t` (its byte order is the due order).
std::string encode_key(const timer_key& t);
/// The key that sorts after every key due at or before `due`.
std::string key_after_due(policies::timestamp due);

/// Arms (profile, schedule) at t.due, removing the index entry of an older due.
void put(write_txn& tx, const timer_key& t);

/// Removes exactly this timer: its index entry, and the owner entry when it still
/// points at t.due. False when the index held no such entry.
bool erase(write_txn& tx, const timer_key& t);

/// Index entries with key > `after_key` (empty: from the start) and due <= `until`,
/// in due order, at most `limit`. On failure sets `ec` (txn_failed, corrupt: a
/// malformed key) and returns what was read before it.
std::vector<timer_key> due_until(read_txn& tx, policies::timestamp until, std::size_t limit,
                                 std::string_view after_key, std::error_code& ec);

/// Removes every timer of `profile_id` (erasure); returns how many.
std::size_t erase_profile(write_txn& tx, std::string_view profile_id);

}  // namespace nudge::storage::timer_table
