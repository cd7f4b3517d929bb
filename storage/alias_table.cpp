#include "storage/alias_table.hpp"

#include <algorithm>
#include <utility>

#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::alias_table {

std::optional<std::string> get(read_txn& tx, std::string_view merged_id) {
  std::error_code ignored;
  return get(tx, merged_id, ignored);
}

std::optional<std::string> get(read_txn& tx, std::string_view merged_id, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return std::nullopt;
  }
  auto value = detail::get(tx, tx.environment().aliases(), merged_id, ec);
  if (!value)
    return std::nullopt;
  return std::string(detail::to_view(*value));
}

std::string resolve(read_txn& tx, std::string_view id, std::error_code& ec) {
  std::string current(id);
  for (int hops = 0; hops < 64; ++hops) {
    auto next = get(tx, current, ec);
    if (!next)
      return current;
    current = std::move(*next);
  }
  ec = errc::corrupt;  // an alias cycle
  return current;
}

void put(write_txn& tx, std::string_view merged_id, std::string_view survivor_id) {
  detail::put(tx, tx.environment().aliases(), merged_id, survivor_id);
}

bool erase(write_txn& tx, std::string_view merged_id) {
  return detail::del(tx, tx.environment().aliases(), merged_id);
}

std::size_t erase_involving(write_txn& tx, const std::vector<std::string>& ids) {
  auto named = [&](std::string_view id) { return std::find(ids.begin(), ids.end(), id) != ids.end(); };
  return detail::erase_if(tx, tx.environment().aliases(),
                          [&](std::string_view k, const MDB_val& v) { return named(k) || named(detail::to_view(v)); });
}

}  // namespace nudge::storage::alias_table
