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

void make_member_key(std::string& key, std::string_view profile_id, const policies::identity& id) {
  key.clear();
  key.reserve(profile_id.size() + 2 + id.type.size() + id.value.size());
  key.append(profile_id);
  key.push_back('\0');
  key.append(id.type);
  key.push_back('\0');
  key.append(id.value);
}

/// The identities under `profile_id` in the members table; `rc` gets LMDB's code.
std::vector<policies::identity> scan_members(MDB_txn* txn, MDB_dbi dbi, std::string_view profile_id, int& rc) {
  std::vector<policies::identity> out;
  std::string prefix(profile_id);
  prefix.push_back('\0');
  detail::cursor cur(txn, dbi, rc);
  if (rc != MDB_SUCCESS)
    return out;
  MDB_val k = detail::to_val(prefix);
  MDB_val v{};
  for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    auto key = detail::to_view(k);
    if (!key.starts_with(prefix))
      break;
    auto rest = key.substr(prefix.size());
    auto sep = rest.find('\0');
    if (sep == std::string_view::npos)
      continue;
    out.push_back({std::string(rest.substr(0, sep)), std::string(rest.substr(sep + 1))});
  }
  if (rc == MDB_NOTFOUND)
    rc = MDB_SUCCESS;
  return out;
}

std::optional<std::string> owner(write_txn& tx, std::string_view key) {
  MDB_val k = detail::to_val(key);
  MDB_val v{};
  int rc = mdb_get(tx.get(), tx.environment().identities(), &k, &v);
  if (rc == MDB_NOTFOUND)
    return std::nullopt;
  if (rc != MDB_SUCCESS)
    detail::fail(tx, rc);
  return std::string(detail::to_view(v));
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

std::vector<policies::identity> members(read_txn& tx, std::string_view profile_id, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return {};
  }
  int rc = MDB_SUCCESS;
  auto out = scan_members(tx.get(), tx.environment().members(), profile_id, rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    out.clear();
  }
  return out;
}

void put(write_txn& tx, const policies::identity& id, std::string_view profile_id) {
  detail::check_usable(tx);
  std::string key;
  make_key(key, id);
  auto previous = owner(tx, key);
  if (previous && *previous == profile_id)
    return;
  detail::put(tx, tx.environment().identities(), key, profile_id);
  std::string member;
  if (previous) {
    make_member_key(member, *previous, id);
    detail::del(tx, tx.environment().members(), member);
  }
  make_member_key(member, profile_id, id);
  detail::put(tx, tx.environment().members(), member, {});
}

bool erase(write_txn& tx, const policies::identity& id) {
  detail::check_usable(tx);
  std::string key;
  make_key(key, id);
  auto previous = owner(tx, key);
  if (!previous)
    return false;
  detail::del(tx, tx.environment().identities(), key);
  std::string member;
  make_member_key(member, *previous, id);
  detail::del(tx, tx.environment().members(), member);
  return true;
}

std::size_t move_all(write_txn& tx, std::string_view from, std::string_view to) {
  detail::check_usable(tx);
  int rc = MDB_SUCCESS;
  auto ids = scan_members(tx.get(), tx.environment().members(), from, rc);
  if (rc != MDB_SUCCESS)
    detail::fail(tx, rc);
  for (const auto& id : ids)
    put(tx, id, to);
  return ids.size();
}

std::vector<policies::identity> erase_profile(write_txn& tx, std::string_view profile_id) {
  detail::check_usable(tx);
  int rc = MDB_SUCCESS;
  auto ids = scan_members(tx.get(), tx.environment().members(), profile_id, rc);
  if (rc != MDB_SUCCESS)
    detail::fail(tx, rc);
  for (const auto& id : ids)
    erase(tx, id);
  return ids;
}

}  // namespace nudge::storage::identity_table
