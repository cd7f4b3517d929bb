#include "storage/identity_table.hpp"

#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::identity_table {
namespace {

void make_key(std::string& key, const policies::identity& id) {
  key.clear();
  key.reserve(id.type.size() + 1 + id.value.size());
  key.append(id.type);
  key.push_back('\0');
  key.append(id.value);
}

}  // namespace

std::optional<std::string> get(read_txn& tx, const policies::identity& id) {
  std::error_code ignored;
  return get(tx, id, ignored);
}

std::optional<std::string> get(read_txn& tx, const policies::identity& id,
                               std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return std::nullopt;
  }
  std::string key;
  make_key(key, id);
  auto value = detail::get(tx, tx.environment().identities(), key, ec);
  if (!value)
    return std::nullopt;
  return std::string(detail::to_view(*value));
}

void put(write_txn& tx, const policies::identity& id, std::string_view profile_id) {
  detail::check_usable(tx);
  std::string& key = detail::key_buffer(tx);
  make_key(key, id);
  detail::put(tx, tx.environment().identities(), key, profile_id);
}

bool erase(write_txn& tx, const policies::identity& id) {
  detail::check_usable(tx);
  std::string& key = detail::key_buffer(tx);
  make_key(key, id);
  return detail::del(tx, tx.environment().identities(), key);
}

bool erase_if_owned(write_txn& tx, const policies::identity& id, std::string_view profile_id) {
  detail::check_usable(tx);
  std::string key;
  make_key(key, id);
  MDB_val k = detail::to_val(key);
  MDB_val v{};
  int rc = mdb_get(tx.get(), tx.environment().identities(), &k, &v);
  if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && detail::to_view(v) != profile_id))
    return false;
  if (rc != MDB_SUCCESS)
    detail::fail(tx, rc);
  return detail::del(tx, tx.environment().identities(), key);
}

}  // namespace nudge::storage::identity_table
