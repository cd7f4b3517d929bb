// The due-time index of profiles that retention may erase (anonymous-only profiles
// idle past [profiles] anonymous_ttl). Two tables kept in step:
//  - expiry:       big-endian u64 due (ms) + profile id → "" (ordered by due time, so
//                  that what is due is read from the front, never by a scan);
//  - expiry_owner: profile id → big-endian u64 due (to move or drop its entry).
// A profile has at most one due time. It may come early (the profile was touched
// since, and the sweep's erase re-checks and moves it), never late.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "policies/profile.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::expiry_table {

/// Sets the due time of `profile_id`, replacing the one it had.
void set(write_txn& tx, std::string_view profile_id, policies::timestamp due);

/// Drops the due time of `profile_id`; true when it had one.
bool clear(write_txn& tx, std::string_view profile_id);

/// The due time of `profile_id`, nullopt when it has none or, with `ec` set, on failure
/// (corrupt: a value that is not 8 bytes). An activating profile reads what its
/// commits last indexed, so that its first message does not rewrite it.
std::optional<policies::timestamp> due_of(read_txn& tx, std::string_view profile_id, std::error_code& ec);

/// Up to `max` (due, profile id) with due <= now, earliest first. On failure sets `ec`.
std::vector<std::pair<policies::timestamp, std::string>> due_before(read_txn& tx, policies::timestamp now,
                                                                     std::size_t max, std::error_code& ec);

}  // namespace nudge::storage::expiry_table
