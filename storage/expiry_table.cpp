#include "storage/expiry_table.hpp"

#include <algorithm>
#include <optional>

#include "storage/detail/lmdb_ops.hpp"
#include "storage/errc.hpp"
#include "storage/env.hpp"

namespace nudge::storage::expiry_table {
namespace {

std::string due_key(std::uint64_t due_ms, std::string_view profile_id) {
  std::string key;
  detail::append_be64(key, due_ms);
  key.append(profile_id);
  return key;
}

/// The due time (ms) that expiry_owner holds for `profile_id`, nullopt when none.
std::optional<std::uint64_t> owned_due(write_txn& tx, std::string_view profile_id) {
  MDB_val k = detail::to_val(profile_id);
  MDB_val v{};
  int rc = mdb_get(tx.get(), tx.environment().expiry_owner(), &k, &v);
  if (rc == MDB_NOTFOUND)
    return std::nullopt;
  if (rc != MDB_SUCCESS || v.mv_size != 8)
    detail::fail(tx, rc != MDB_SUCCESS ? rc : MDB_CORRUPTED);
  return detail::read_be64(static_cast<const char*>(v.mv_data));
}

}  // namespace

bool clear(write_txn& tx, std::string_view profile_id) {
  detail::check_usable(tx);
  const auto old = owned_due(tx, profile_id);
  if (!old)
    return false;
  detail::del(tx, tx.environment().expiry(), due_key(*old, profile_id));
  detail::del(tx, tx.environment().expiry_owner(), profile_id);
  return true;
}

void set(write_txn& tx, std::string_view profile_id, policies::timestamp due) {
  detail::check_usable(tx);
  const auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, due.time_since_epoch().count()));
  const auto old = owned_due(tx, profile_id);
  if (old == ms)
    return;
  if (old)
    detail::del(tx, tx.environment().expiry(), due_key(*old, profile_id));
  std::string value;
  detail::append_be64(value, ms);
  detail::put(tx, tx.environment().expiry(), due_key(ms, profile_id), {});
  detail::put(tx, tx.environment().expiry_owner(), profile_id, value);  // replaces the old one
}

std::optional<policies::timestamp> due_of(read_txn& tx, std::string_view profile_id, std::error_code& ec) {
  ec.clear();
  auto v = detail::get(tx, tx.environment().expiry_owner(), profile_id, ec);
  if (!v)
    return std::nullopt;
  if (v->mv_size != 8) {
    ec = errc::corrupt;
    return std::nullopt;
  }
  const auto ms = static_cast<std::int64_t>(detail::read_be64(static_cast<const char*>(v->mv_data)));
  return policies::timestamp(std::chrono::milliseconds(ms));
}

std::vector<std::pair<policies::timestamp, std::string>> due_before(read_txn& tx, policies::timestamp now,
                                                                     std::size_t max, std::error_code& ec) {
  ec.clear();
  std::vector<std::pair<policies::timestamp, std::string>> out;
  if (!tx) {
    ec = errc::txn_failed;
    return out;
  }
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().expiry(), rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return out;
  }
  const auto now_ms = now.time_since_epoch().count();
  MDB_val k{};
  MDB_val v{};
  rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
  while (rc == MDB_SUCCESS && out.size() < max && k.mv_size > 8) {
    const auto* p = static_cast<const char*>(k.mv_data);
    const auto due = static_cast<std::int64_t>(detail::read_be64(p));
    if (due > now_ms)
      break;
    out.emplace_back(policies::timestamp{std::chrono::milliseconds{due}}, std::string(p + 8, k.mv_size - 8));
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    ec = detail::from_mdb(rc);
  return out;
}

}  // namespace nudge::storage::expiry_table
