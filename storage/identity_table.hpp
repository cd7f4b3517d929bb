// The identity index: identity (type + '\0' + normalised value) → profile id, the
// source of truth for resolution; and its reverse, the `members` table (profile id +
// '\0' + type + '\0' + value → empty), which answers "which identities does this
// profile hold" for the per-type limits and for merges. Every write here keeps the
// two in step within the same transaction.
// Identity types must not contain '\0'; type + value must fit LMDB's 511-byte keys
// (the decoder caps identity values at 256 bytes).
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "policies/profile.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::identity_table {

/// The profile holding `id`, or nullopt when none does (or when the read failed:
/// use the overload with `ec` to tell the two apart).
std::optional<std::string> get(read_txn& tx, const policies::identity& id);
std::optional<std::string> get(read_txn& tx, const policies::identity& id,
                               std::error_code& ec);

/// The identities `profile_id` holds, in key order (type, then value); empty on a
/// failed read with `ec` set.
std::vector<policies::identity> members(read_txn& tx, std::string_view profile_id, std::error_code& ec);

/// Points `id` at `profile_id`, replacing any previous owner (whose member row goes).
void put(write_txn& tx, const policies::identity& id, std::string_view profile_id);

/// True when `id` was present; its member row goes with it.
bool erase(write_txn& tx, const policies::identity& id);

/// Moves every identity of `from` to `to` (a merge); returns how many moved.
std::size_t move_all(write_txn& tx, std::string_view from, std::string_view to);

/// Removes every identity of `profile_id` from both tables (erasure); returns the
/// identities removed.
std::vector<policies::identity> erase_profile(write_txn& tx, std::string_view profile_id);

}  // namespace nudge::storage::identity_table
