#include "storage/meta_table.hpp"

#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::meta_table {

std::optional<std::string> get(read_txn& tx, std::string_view key) {
  std::error_code ignored;
  return get(tx, key, ignored);
}

std::optional<std::string> get(read_txn& tx, std::string_view key, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return std::nullopt;
  }
  auto value = detail::get(tx, tx.environment().meta(), key, ec);
  if (!value)
    return std::nullopt;
  return std::string(detail::to_view(*value));
}

void put(write_txn& tx, std::string_view key, std::string_view value) {
  detail::put(tx, tx.environment().meta(), key, value);
}

bool erase(write_txn& tx, std::string_view key) {
  return detail::del(tx, tx.environment().meta(), key);
}

}  // namespace nudge::storage::meta_table
