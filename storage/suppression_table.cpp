#include "storage/suppression_table.hpp"

#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::suppression_table {

bool contains(read_txn& tx, std::string_view hash, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return false;
  }
  return detail::get(tx, tx.environment().suppression(), hash, ec).has_value();
}

void put(write_txn& tx, std::string_view hash, policies::timestamp added) {
  auto& value = detail::key_buffer(tx);
  detail::append_be64(value, static_cast<std::uint64_t>(added.time_since_epoch().count()));
  detail::put(tx, tx.environment().suppression(), hash, value);
}

std::uint64_t count(read_txn& tx) {
  MDB_stat st{};
  if (!tx || mdb_stat(tx.get(), tx.environment().suppression(), &st) != MDB_SUCCESS)
    return 0;
  return st.ms_entries;
}

}  // namespace nudge::storage::suppression_table
