#include "storage/alias_table.hpp"

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

std::size_t erase_to(write_txn& tx, std::string_view survivor_id) {
  return detail::erase_if(tx, tx.environment().aliases(),
                          [&](std::string_view, const MDB_val& v) { return detail::to_view(v) == survivor_id; });
}

}  // namespace nudge::storage::alias_table
