// The profiles table: profile id → profile_snapshot (msgpack, see codec.hpp).
//
// Reads take a read_txn (any thread, see read_txn.hpp); writes take the write_txn of
// an env::commit (writer thread) and, on an LMDB failure, abort that commit (see
// write_txn.hpp). The returned values are copies: they outlive the transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "storage/profile_snapshot.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::profile_table {

/// The snapshot of `id`; nullopt when absent, or on failure with `ec` set
/// (corrupt: undecodable; txn_failed: empty read_txn).
std::optional<profile_snapshot> get(read_txn& tx, std::string_view id, std::error_code& ec);

/// Inserts or replaces the snapshot under `snapshot.state.id`.
void put(write_txn& tx, const profile_snapshot& snapshot);

/// The bytes put() stores for profile_snapshot{state, seq}, made without a copy of
/// `state` (any thread): a write record can carry its profile's snapshot as one block.
std::string encode(const policies::profile_state& state, std::uint64_t seq);

/// Inserts or replaces the snapshot of `id` with encode()'s bytes.
void put_encoded(write_txn& tx, std::string_view id, std::string_view bytes);

/// True when `id` was present.
bool erase(write_txn& tx, std::string_view id);

/// Number of stored profiles.
std::uint64_t count(read_txn& tx);

/// Up to `max` ids greater than `after`, in key order ("" starts at the first):
/// pages through every profile for retention sweeps without holding one long txn.
std::vector<std::string> ids_after(read_txn& tx, std::string_view after, std::size_t max,
                                   std::error_code& ec);

}  // namespace nudge::storage::profile_table
