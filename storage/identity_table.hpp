// The identity index: identity (type + '\0' + normalised value) → profile id. The
// source of truth for resolution; only the identity_actor's merges change it.
// Identity types must not contain '\0'; type + value must fit LMDB's 511-byte keys.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "policies/profile.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::identity_table {

/// The profile holding `id`, or nullopt when none does (or when the read failed:
/// use the overload with `ec` to tell the two apart).
std::optional<std::string> get(read_txn& tx, const policies::identity& id);
std::optional<std::string> get(read_txn& tx, const policies::identity& id,
                               std::error_code& ec);

/// Points `id` at `profile_id`, replacing any previous owner.
void put(write_txn& tx, const policies::identity& id, std::string_view profile_id);

/// True when `id` was present.
bool erase(write_txn& tx, const policies::identity& id);

/// Deletes `id` only while it names `profile_id` (erasure must not take an identity
/// that a later message already linked elsewhere); true when it did.
bool erase_if_owned(write_txn& tx, const policies::identity& id, std::string_view profile_id);

}  // namespace nudge::storage::identity_table
