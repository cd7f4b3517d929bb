#include "storage/outbox_table.hpp"

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::outbox_table {
namespace {

bool split_key(std::string_view k, outbox_entry& out) {
  auto a = k.find('\0');
  if (a == std::string_view::npos)
    return false;
  auto b = k.find('\0', a + 1);
  if (b == std::string_view::npos)
    return false;
  out.profile_id.assign(k.substr(0, a));
  out.decision_id.assign(k.substr(a + 1, b - a - 1));
  out.destination_id.assign(k.substr(b + 1));
  return true;
}

void put_into(write_txn& tx, MDB_dbi dbi, const outbox_entry& e) {
  detail::check_usable(tx);
  auto& buffer = detail::value_buffer(tx);
  encode(e, buffer);
  detail::put(tx, dbi, key_of(e), std::string_view(buffer.data(), buffer.size()));
}

}  // namespace

std::string key_of(const outbox_entry& e) {
  std::string k;
  k.reserve(e.profile_id.size() + e.decision_id.size() + e.destination_id.size() + 2);
  k.append(e.profile_id);
  k.push_back('\0');
  k.append(e.decision_id);
  k.push_back('\0');
  k.append(e.destination_id);
  return k;
}

void put(write_txn& tx, const outbox_entry& e) {
  put_into(tx, tx.environment().outbox(), e);
}

bool erase(write_txn& tx, std::string_view key) {
  detail::check_usable(tx);
  return detail::del(tx, tx.environment().outbox(), key);
}

namespace {

/// Takes `e` out of the pending table and stores it whole in `dbi`, only when it was
/// still pending (an entry delivered or erased meanwhile is not revived).
void replace_pending(write_txn& tx, const outbox_entry& e, MDB_dbi dbi) {
  detail::check_usable(tx);
  if (detail::del(tx, tx.environment().outbox(), key_of(e)))
    put_into(tx, dbi, e);
}

}  // namespace

void mark_failed(write_txn& tx, const outbox_entry& e) {
  replace_pending(tx, e, tx.environment().outbox_failed());
}

void record_attempts(write_txn& tx, const outbox_entry& e) {
  replace_pending(tx, e, tx.environment().outbox());
}

std::vector<outbox_entry> read_pending(read_txn& tx, std::string_view after_key, std::size_t limit,
                                       std::error_code& ec) {
  ec.clear();
  std::vector<outbox_entry> out;
  if (!tx) {
    ec = errc::txn_failed;
    return out;
  }
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().outbox(), rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return out;
  }
  MDB_val k = detail::to_val(after_key);
  MDB_val v{};
  rc = after_key.empty() ? mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST)
                         : mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  if (rc == MDB_SUCCESS && !after_key.empty() && detail::to_view(k) == after_key)
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  for (; rc == MDB_SUCCESS && out.size() < limit; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    outbox_entry e;
    if (!split_key(detail::to_view(k), e) || decode(detail::to_bytes(v), e)) {
      ec = errc::corrupt;
      return out;
    }
    out.push_back(std::move(e));
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    ec = detail::from_mdb(rc);
  return out;
}

std::size_t erase_profile(write_txn& tx, std::string_view profile_id) {
  detail::check_usable(tx);
  std::string prefix(profile_id);
  prefix.push_back('\0');
  const auto& e = tx.environment();
  return detail::erase_prefix(tx, e.outbox(), prefix) + detail::erase_prefix(tx, e.outbox_failed(), prefix);
}

}  // namespace nudge::storage::outbox_table
