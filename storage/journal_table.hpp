// The journal: one log of every accepted message, keyed by a big-endian u64
// position that only grows, so that a commit's records append to the last leaf
// instead of dirtying one leaf per profile (power durability syncs every page a
// commit dirties; docs/BENCHMARKS.md, "An append-keyed journal").
//
// Value: big-endian u16 length of the profile id, the id, big-endian u64 seq (the
// profile's own sequence number), then the msgpack journal_entry.
//
// Which positions belong to which profile is not stored: the writer keeps that
// index in memory (actors/journal_index.hpp) and rebuilds it at start with scan().
// Entries behind a profile's snapshot are dead; they leave in position order with
// drop_before(), at a clean stop all at once by drop_except(), or at once by
// erase_profiles() (erasure).
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <lmdb.h>

#include "storage/journal_entry.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::journal_table {

/// What scan() shows of an entry without decoding it.
struct entry_header {
  std::uint64_t position = 0;
  std::string_view profile_id;  ///< points into the map: valid while the read transaction lasts
  std::uint64_t seq = 0;
};

/// One past the highest stored position (1 for an empty journal).
std::uint64_t next_position(read_txn& tx, std::error_code& ec);
std::uint64_t next_position(write_txn& tx);

/// Appends `entry` of `profile_id` at `position`, which must be above every stored
/// position (else the commit fails with MDB_KEYEXIST). Profile ids are at most 65,535
/// bytes.
void append(write_txn& tx, std::uint64_t position, std::string_view profile_id,
            const journal_entry& entry);

/// The entry at `position` when it is one of `profile_id`'s; nullopt when there is
/// none (dropped, or another profile's). Sets `ec` (corrupt) on an undecodable one.
std::optional<journal_entry> get(read_txn& tx, std::uint64_t position, std::string_view profile_id,
                                 std::error_code& ec);

/// Calls `fn` for every stored entry in position order until it returns false. Sets
/// `ec` (corrupt) and stops at a malformed key or header.
void scan(read_txn& tx, const std::function<bool(const entry_header&)>& fn, std::error_code& ec);

/// The positions of `profile_id`'s stored entries, ascending: a scan of the whole
/// journal, for tools and tests that read a copy (the service uses its index).
std::vector<std::uint64_t> positions_of(read_txn& tx, std::string_view profile_id, std::error_code& ec);

/// Deletes the entries below `position`, oldest first, at most `max_entries`; returns
/// how many.
std::size_t drop_before(write_txn& tx, std::uint64_t position, std::size_t max_entries);

/// Deletes the entries from `from` on and below `below` whose positions are not in
/// `keep` (ascending), at most `max_entries`; returns how many, and sets `from` to
/// where a next call goes on (`below` when the range is done). For a clean stop,
/// which leaves only the live entries for the next start to read.
std::size_t drop_except(write_txn& tx, std::uint64_t& from, std::uint64_t below,
                        std::span<const std::uint64_t> keep, std::size_t max_entries);

/// Deletes every entry of the given profiles: a scan of the whole journal (which
/// holds only what snapshots have not yet covered), for erasure. Returns how many.
std::size_t erase_profiles(write_txn& tx, const std::vector<std::string>& profile_ids);

/// Moves the entries of a journal in the earlier layout (key: profile id + '\0' +
/// big-endian u64 seq; value: the msgpack entry) from `old_table` to the end of the
/// journal, then empties `old_table`. Returns how many moved. For env::open.
std::size_t migrate_keyed(write_txn& tx, MDB_dbi old_table);

}  // namespace nudge::storage::journal_table
