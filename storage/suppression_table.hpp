// The suppression list: keyed hashes (HMAC-SHA256, computed above this layer) of the
// identities of erased profiles whose erasure asked for suppression. Key: the hash
// bytes; value: big-endian u64 ms of when it was added. Holds no identity in clear.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>

#include "policies/profile.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::suppression_table {

/// Whether `hash` is listed; false also on failure, with `ec` set.
bool contains(read_txn& tx, std::string_view hash, std::error_code& ec);

/// Lists `hash` (replacing the time when already listed).
void put(write_txn& tx, std::string_view hash, policies::timestamp added);

/// Number of listed hashes.
std::uint64_t count(read_txn& tx);

}  // namespace nudge::storage::suppression_table
