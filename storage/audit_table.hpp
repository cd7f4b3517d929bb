// The audit trail: append-only records per profile. Key: profile id + '\0' +
// big-endian u64 ts (ms) + big-endian u32 sequence, so that one profile's records are
// contiguous and in time order; value: audit_record (msgpack, codec.hpp) without the
// profile id. Erasure records are stored under the empty profile id (key starts with
// '\0'), which names nobody. Profile ids must not contain '\0'.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <cstddef>
#include <string_view>
#include <system_error>
#include <vector>

#include "storage/audit_record.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::audit_table {

/// Appends `rec` under (rec.profile_id, rec.ts, a process-wide sequence number), so
/// that two records of the same millisecond both stay. Writer thread.
void append(write_txn& tx, const audit_record& rec);

/// The records of `profile_id`, oldest first, at most `max`. On failure sets `ec`
/// (corrupt: an undecodable record) and returns what was read before it.
std::vector<audit_record> read(read_txn& tx, std::string_view profile_id, std::error_code& ec,
                               std::size_t max = 100000);

/// Moves every record of `from` to `to` (a merge: the survivor's trail holds the
/// merged profile's), keeping their times; returns how many.
std::size_t move_all(write_txn& tx, std::string_view from, std::string_view to);

/// Deletes every record of `profile_id`; returns how many. An empty id is refused
/// (returns 0): erasure records are never erased this way.
std::size_t erase_profile(write_txn& tx, std::string_view profile_id);

}  // namespace nudge::storage::audit_table
