// The outbox: decisions waiting to be POSTed to a destination, and those given up.
//  - "outbox":        pending entries;
//  - "outbox_failed": entries that reached max_attempts (kept for operators).
// Key: profile id + '\0' + decision id + '\0' + destination id (so erasure finds a
// profile's entries with one prefix walk); value: outbox_entry's created time, body
// and failed attempts (msgpack, storage/codec.hpp). Ids must not contain '\0'.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "storage/outbox_entry.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::outbox_table {

/// The key of `e` in either table.
std::string key_of(const outbox_entry& e);

/// Adds (or replaces) a pending entry.
void put(write_txn& tx, const outbox_entry& e);

/// Removes the pending entry with this key (delivered); false when absent.
bool erase(write_txn& tx, std::string_view key);

/// Moves the pending entry `e` to the failed table; nothing when it is no longer
/// pending (delivered, or erased with its profile while a request was out).
void mark_failed(write_txn& tx, const outbox_entry& e);

/// Stores e.attempts on the pending entry `e`; nothing when it is no longer pending.
void record_attempts(write_txn& tx, const outbox_entry& e);

/// Pending entries with key > `after_key` (empty: from the start), in key order, at
/// most `limit`. On failure sets `ec` (txn_failed, corrupt) and returns what was read.
std::vector<outbox_entry> read_pending(read_txn& tx, std::string_view after_key, std::size_t limit,
                                       std::error_code& ec);

/// Removes every pending and failed entry of `profile_id` (erasure); returns how many.
std::size_t erase_profile(write_txn& tx, std::string_view profile_id);

}  // namespace nudge::storage::outbox_table
