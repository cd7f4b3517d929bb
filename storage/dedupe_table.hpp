// The dedupe tables: the first reply of each accepted message, for the dedupe window.
//
// - By time (the common case): key big-endian u64 ms since the epoch + big-endian u64
//   key hash (actors' seen_key_hash) + source + '\0' + message id. Keys grow with
//   time, so a commit's entries land on the last leaves, and expired ones leave from
//   the front. Found through the profile's memory of what it has seen (its hash and
//   time), which profile_state::seen keeps.
// - By id (a profile past its bound of seen messages, and entries written before the
//   time table): key big-endian u32 day number (days since the epoch) + source +
//   '\0' + message id, so that expired days are dropped whole.
//
// Values: dedupe_entry (msgpack), a JSON reply packed (reply_pack.hpp) for the key's
// message id. Sources must not contain '\0'.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstddef>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>
#include <tuple>
#include <string>
#include <vector>

#include "policies/profile.hpp"
#include "storage/dedupe_entry.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::dedupe_table {

/// The entry for (source, id) accepted within [now - window, now]: looks in every day
/// bucket that range touches (two for a 24 h window) and returns an entry only when
/// entry.ts >= now - window. nullopt when there is none, or on failure with `ec` set
/// (corrupt: undecodable value).
std::optional<dedupe_entry> get(read_txn& tx, std::string_view source, std::string_view id,
                                policies::timestamp now, std::chrono::milliseconds window,
                                std::error_code& ec);

/// Records (source, id) in the bucket of entry.ts, replacing an equal key.
void put(write_txn& tx, std::string_view source, std::string_view id, const dedupe_entry& entry);

/// Deletes the entries of every bucket whose whole day lies before `cutoff` (call it
/// with cutoff = now - window), oldest first, at most `max_entries` of them; returns
/// how many. When it returns max_entries, more may remain: call again in a later
/// commit to keep each transaction small.
std::size_t drop_before(write_txn& tx, policies::timestamp cutoff,
                        std::size_t max_entries = std::numeric_limits<std::size_t>::max());

/// The entry stored by time for the message (source, id) with hash `key_hash`
/// accepted at `ts`; nullopt when there is none, or on failure with `ec` set.
std::optional<dedupe_entry> get_by_time(read_txn& tx, policies::timestamp ts, std::uint64_t key_hash,
                                        std::string_view source, std::string_view id, std::error_code& ec);

/// Stores the entry by time (entry.ts), replacing an equal key. Put in key order
/// (time_key_order), entries fill whole leaves (LMDB splits a leaf at its end when the
/// new key goes there, in half otherwise) and each skips LMDB's search from the root
/// (detail::put_last); the journal sorts each commit's.
void put_by_time(write_txn& tx, std::uint64_t key_hash, std::string_view source, std::string_view id,
                 const dedupe_entry& entry);

/// Compares as the keys put_by_time() stores (the time, then the hash, source and id),
/// without building them.
inline auto time_key_order(policies::timestamp ts, std::uint64_t key_hash, std::string_view source,
                           std::string_view id) noexcept {
  return std::make_tuple(std::max<std::int64_t>(0, ts.time_since_epoch().count()), key_hash, source, id);
}

/// Deletes the entries stored by time before `cutoff`, oldest first, at most
/// `max_entries`; returns how many.
std::size_t drop_by_time_before(write_txn& tx, policies::timestamp cutoff,
                                std::size_t max_entries = std::numeric_limits<std::size_t>::max());

/// Deletes every entry, in both tables, that names `profile_id` (erasure). A full scan: it decodes
/// every entry, so it is only for rare calls; undecodable entries are left alone.
/// Returns how many were deleted.
std::size_t erase_profile(write_txn& tx, std::string_view profile_id);
/// The same for several profiles in one scan (a profile and the ids merged into it).
std::size_t erase_profiles(write_txn& tx, const std::vector<std::string>& profile_ids);

}  // namespace nudge::storage::dedupe_table
