#include "storage/profile_table.hpp"

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::profile_table {

std::optional<profile_snapshot> get(read_txn& tx, std::string_view id, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return std::nullopt;
  }
  auto value = detail::get(tx, tx.environment().profiles(), id, ec);
  if (!value)
    return std::nullopt;
  profile_snapshot out;
  if ((ec = decode(detail::to_bytes(*value), out)))
    return std::nullopt;
  return out;
}

void put(write_txn& tx, const profile_snapshot& snapshot) {
  detail::check_usable(tx);
  auto& buffer = detail::value_buffer(tx);
  encode(snapshot, buffer);
  detail::put(tx, tx.environment().profiles(), snapshot.state.id,
              std::string_view(buffer.data(), buffer.size()));
}

std::string encode(const policies::profile_state& state, std::uint64_t seq) {
  thread_local msgpack::sbuffer buffer;
  buffer.clear();
  encode_snapshot(state, seq, buffer);
  return std::string(buffer.data(), buffer.size());
}

void put_encoded(write_txn& tx, std::string_view id, std::string_view bytes) {
  detail::check_usable(tx);
  detail::put(tx, tx.environment().profiles(), id, bytes);
}

bool erase(write_txn& tx, std::string_view id) {
  return detail::del(tx, tx.environment().profiles(), id);
}

std::uint64_t count(read_txn& tx) {
  if (!tx)
    return 0;
  MDB_stat st{};
  if (mdb_stat(tx.get(), tx.environment().profiles(), &st) != MDB_SUCCESS)
    return 0;
  return st.ms_entries;
}

std::vector<std::string> ids_after(read_txn& tx, std::string_view after, std::size_t max,
                                   std::error_code& ec) {
  ec.clear();
  std::vector<std::string> ids;
  if (!tx) {
    ec = errc::txn_failed;
    return ids;
  }
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().profiles(), rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return ids;
  }
  MDB_val key = detail::to_val(after);
  MDB_val value{};
  rc = after.empty() ? mdb_cursor_get(cur.get(), &key, &value, MDB_FIRST)
                     : mdb_cursor_get(cur.get(), &key, &value, MDB_SET_RANGE);
  if (rc == MDB_SUCCESS && !after.empty() && detail::to_view(key) == after)
    rc = mdb_cursor_get(cur.get(), &key, &value, MDB_NEXT);
  while (rc == MDB_SUCCESS && ids.size() < max) {
    ids.emplace_back(detail::to_view(key));
    rc = mdb_cursor_get(cur.get(), &key, &value, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    ec = detail::from_mdb(rc);
  return ids;
}

}  // namespace nudge::storage::profile_table
