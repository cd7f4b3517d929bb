// The alias table: merged-away profile id → the id that survived the merge, so that a
// merged id stays resolvable. The survivor may itself be merged later: follow the
// chain (resolve) until an id has no alias.
//
// Reads take a read_txn (any thread); writes take the write_txn of an env::commit
// (writer thread) and, on an LMDB failure, abort that commit (see write_txn.hpp).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::alias_table {

/// The survivor recorded for `merged_id`, or nullopt (none, or a failed read: use the
/// overload with `ec` to tell them apart).
std::optional<std::string> get(read_txn& tx, std::string_view merged_id);
std::optional<std::string> get(read_txn& tx, std::string_view merged_id, std::error_code& ec);

/// Follows aliases from `id` to the final survivor (at most 64 hops, against cycles);
/// returns `id` itself when it has no alias.
std::string resolve(read_txn& tx, std::string_view id, std::error_code& ec);

void put(write_txn& tx, std::string_view merged_id, std::string_view survivor_id);

/// True when `merged_id` was present.
bool erase(write_txn& tx, std::string_view merged_id);

/// Deletes every alias from or to one of `ids` (erasure of a profile and the ids
/// merged into it); returns how many. A scan of the whole table: only for rare calls
/// (aliases are one per merge).
std::size_t erase_involving(write_txn& tx, const std::vector<std::string>& ids);

}  // namespace nudge::storage::alias_table
