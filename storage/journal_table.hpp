// The journal table: one journal_entry per accepted message, keyed by
// profile id + '\0' + big-endian u64 seq, so that one profile's entries are
// contiguous and in seq order. Profile ids must not contain '\0'.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <vector>

#include "storage/journal_entry.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::journal_table {

/// Stores `entry` under (profile_id, entry.seq), replacing one with the same seq.
void append(write_txn& tx, std::string_view profile_id, const journal_entry& entry);

/// The entries of `profile_id` with seq > after_seq, in seq order. On failure sets
/// `ec` (corrupt: an undecodable entry) and returns an empty vector.
std::vector<journal_entry> read_after(read_txn& tx, std::string_view profile_id,
                                      std::uint64_t after_seq, std::error_code& ec);

/// The highest seq stored for `profile_id`, or 0 when it has none.
std::uint64_t last_seq(read_txn& tx, std::string_view profile_id, std::error_code& ec);

/// Deletes the entries of `profile_id` with seq <= upto_seq; returns how many.
std::size_t prune(write_txn& tx, std::string_view profile_id, std::uint64_t upto_seq);

/// Deletes every entry of `profile_id`; returns how many.
std::size_t erase_all(write_txn& tx, std::string_view profile_id);

}  // namespace nudge::storage::journal_table
