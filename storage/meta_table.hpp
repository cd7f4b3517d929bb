// The meta table: small string settings and counters (active policy text, shared
// counters, "schema_version", which env::open owns: do not overwrite it).
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::meta_table {

/// The value of `key`, or nullopt (absent, or a failed read: use the overload with
/// `ec` to tell them apart).
std::optional<std::string> get(read_txn& tx, std::string_view key);
std::optional<std::string> get(read_txn& tx, std::string_view key, std::error_code& ec);

void put(write_txn& tx, std::string_view key, std::string_view value);

/// True when `key` was present.
bool erase(write_txn& tx, std::string_view key);

}  // namespace nudge::storage::meta_table
