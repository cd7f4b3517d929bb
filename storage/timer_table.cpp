#include "storage/timer_table.hpp"

#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

#include <algorithm>

namespace nudge::storage::timer_table {
namespace {

constexpr std::size_t due_bytes = 8;

std::uint64_t due_ms(policies::timestamp due) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, due.time_since_epoch().count()));
}

std::string owner_key(std::string_view profile_id, std::string_view schedule_id) {
  std::string k;
  k.reserve(profile_id.size() + 1 + schedule_id.size());
  k.append(profile_id);
  k.push_back('\0');
  k.append(schedule_id);
  return k;
}

bool decode_key(std::string_view k, timer_key& out) {
  if (k.size() < due_bytes + 2)
    return false;
  auto rest = k.substr(due_bytes);
  auto zero = rest.find('\0');
  if (zero == std::string_view::npos || zero == 0)
    return false;
  out.due = policies::timestamp{std::chrono::milliseconds{static_cast<std::int64_t>(detail::read_be64(k.data()))}};
  out.profile_id.assign(rest.substr(0, zero));
  out.schedule_id.assign(rest.substr(zero + 1));
  return true;
}

void fail_unless_ok(write_txn& tx, int rc) {
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    detail::fail(tx, rc);
}

}  // namespace

std::string encode_key(const timer_key& t) {
  std::string k;
  k.reserve(due_bytes + t.profile_id.size() + 1 + t.schedule_id.size());
  detail::append_be64(k, due_ms(t.due));
  k.append(t.profile_id);
  k.push_back('\0');
  k.append(t.schedule_id);
  return k;
}

std::string key_after_due(policies::timestamp due) {
  std::string k;
  detail::append_be64(k, due_ms(due));
  k.push_back('\xff');
  return k;
}

void put(write_txn& tx, const timer_key& t) {
  detail::check_usable(tx);
  auto owner = owner_key(t.profile_id, t.schedule_id);
  const auto& e = tx.environment();
  MDB_val k = detail::to_val(owner);
  MDB_val v{};
  int rc = mdb_get(tx.get(), e.timer_owners(), &k, &v);
  fail_unless_ok(tx, rc);
  if (rc == MDB_SUCCESS && v.mv_size == due_bytes) {
    auto old_due = detail::read_be64(static_cast<const char*>(v.mv_data));
    if (old_due != due_ms(t.due)) {
      timer_key old = t;
      old.due = policies::timestamp{std::chrono::milliseconds{static_cast<std::int64_t>(old_due)}};
      detail::del(tx, e.timers(), encode_key(old));
    }
  }
  std::string due;
  detail::append_be64(due, due_ms(t.due));
  detail::put(tx, e.timer_owners(), owner, due);
  detail::put(tx, e.timers(), encode_key(t), {});
}

bool erase(write_txn& tx, const timer_key& t) {
  detail::check_usable(tx);
  const auto& e = tx.environment();
  auto owner = owner_key(t.profile_id, t.schedule_id);
  MDB_val k = detail::to_val(owner);
  MDB_val v{};
  int rc = mdb_get(tx.get(), e.timer_owners(), &k, &v);
  fail_unless_ok(tx, rc);
  if (rc == MDB_SUCCESS && v.mv_size == due_bytes &&
      detail::read_be64(static_cast<const char*>(v.mv_data)) == due_ms(t.due))
    detail::del(tx, e.timer_owners(), owner);
  return detail::del(tx, e.timers(), encode_key(t));
}

std::vector<timer_key> due_until(read_txn& tx, policies::timestamp until, std::size_t limit,
                                 std::string_view after_key, std::error_code& ec) {
  ec.clear();
  std::vector<timer_key> out;
  if (!tx) {
    ec = errc::txn_failed;
    return out;
  }
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().timers(), rc);
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
  const auto until_ms = due_ms(until);
  for (; rc == MDB_SUCCESS && out.size() < limit; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    auto key = detail::to_view(k);
    if (key.size() >= due_bytes && detail::read_be64(key.data()) > until_ms)
      return out;
    timer_key t;
    if (!decode_key(key, t)) {
      ec = errc::corrupt;
      return out;
    }
    out.push_back(std::move(t));
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    ec = detail::from_mdb(rc);
  return out;
}

std::size_t erase_profile(write_txn& tx, std::string_view profile_id) {
  detail::check_usable(tx);
  const auto& e = tx.environment();
  std::string prefix(profile_id);
  prefix.push_back('\0');
  std::vector<timer_key> found;
  {
    int rc = MDB_SUCCESS;
    detail::cursor cur(tx.get(), e.timer_owners(), rc);
    if (rc != MDB_SUCCESS)
      detail::fail(tx, rc);
    MDB_val k = detail::to_val(prefix);
    MDB_val v{};
    for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      auto key = detail::to_view(k);
      if (key.substr(0, prefix.size()) != prefix)
        break;
      if (v.mv_size != due_bytes)
        continue;
      auto due = detail::read_be64(static_cast<const char*>(v.mv_data));
      found.push_back({policies::timestamp{std::chrono::milliseconds{static_cast<std::int64_t>(due)}},
                       std::string(profile_id), std::string(key.substr(prefix.size()))});
    }
    fail_unless_ok(tx, rc);
  }
  for (const auto& t : found) {
    detail::del(tx, e.timer_owners(), owner_key(t.profile_id, t.schedule_id));
    detail::del(tx, e.timers(), encode_key(t));
  }
  return found.size();
}

}  // namespace nudge::storage::timer_table
