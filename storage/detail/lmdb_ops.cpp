#include "storage/detail/lmdb_ops.hpp"

#include <cerrno>
#include <limits>

#include "storage/commit_log.hpp"

namespace nudge::storage::detail {

errc from_mdb(int rc) noexcept {
  switch (rc) {
    case MDB_SUCCESS:
      return errc::ok;
    case MDB_MAP_FULL:
      return errc::map_full;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return errc::corrupt;
    default:
      break;
  }
  // Positive codes are errno values from the file system; EINVAL is misuse.
  if (rc > 0 && rc != EINVAL)
    return errc::io_error;
  return errc::txn_failed;
}

void fail(write_txn& tx, int rc) {
  int& stored = write_access::rc(tx);
  if (stored == 0)
    stored = rc;
  throw txn_aborted{};
}

std::optional<MDB_val> get(const read_txn& tx, MDB_dbi dbi, std::string_view key,
                           std::error_code& ec) noexcept {
  if (!tx) {
    ec = errc::txn_failed;
    return std::nullopt;
  }
  MDB_val k = to_val(key);
  MDB_val v{};
  int rc = mdb_get(tx.get(), dbi, &k, &v);
  if (rc == MDB_NOTFOUND)
    return std::nullopt;
  if (rc != MDB_SUCCESS) {
    ec = from_mdb(rc);
    return std::nullopt;
  }
  return v;
}

void log_put(write_txn& tx, MDB_dbi dbi, std::string_view key, std::string_view value) {
  if (auto* log = write_access::log(tx))
    commit_log::add_put(*log, dbi, key, value);
}

void log_del(write_txn& tx, MDB_dbi dbi, std::string_view key) {
  if (auto* log = write_access::log(tx))
    commit_log::add_del(*log, dbi, key);
}

void put(write_txn& tx, MDB_dbi dbi, std::string_view key, std::string_view value) {
  check_usable(tx);
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  if (int rc = mdb_put(tx.get(), dbi, &k, &v, 0); rc != MDB_SUCCESS)
    fail(tx, rc);
  log_put(tx, dbi, key, value);
}

void put_last(write_txn& tx, MDB_dbi dbi, std::string_view key, std::string_view value) {
  check_usable(tx);
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  int rc = mdb_put(tx.get(), dbi, &k, &v, MDB_APPEND);
  if (rc == MDB_KEYEXIST)
    put(tx, dbi, key, value);
  else if (rc != MDB_SUCCESS)
    fail(tx, rc);
  else
    log_put(tx, dbi, key, value);
}

bool del(write_txn& tx, MDB_dbi dbi, std::string_view key) {
  check_usable(tx);
  MDB_val k = to_val(key);
  int rc = mdb_del(tx.get(), dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND)
    return false;
  if (rc != MDB_SUCCESS)
    fail(tx, rc);
  log_del(tx, dbi, key);
  return true;
}

std::size_t erase_range(write_txn& tx, MDB_dbi dbi, std::string_view from,
                        std::optional<std::string_view> before) {
  // string_view compares as memcmp, then by length: LMDB's default key order.
  return erase_walk(tx, dbi, from, std::numeric_limits<std::size_t>::max(), [&](const MDB_val& k, const MDB_val&) {
    return !before || to_view(k) < *before ? walk_step::erase : walk_step::stop;
  });
}

std::size_t erase_prefix(write_txn& tx, MDB_dbi dbi, std::string_view prefix) {
  // The keys with this prefix end before its successor: the prefix without its
  // trailing 0xff bytes, the last one left incremented (none: they run to the end).
  std::string after(prefix);
  while (!after.empty() && static_cast<unsigned char>(after.back()) == 0xff)
    after.pop_back();
  if (after.empty())
    return erase_range(tx, dbi, prefix, std::nullopt);
  after.back() = static_cast<char>(static_cast<unsigned char>(after.back()) + 1);
  return erase_range(tx, dbi, prefix, after);
}

std::size_t erase_walk(write_txn& tx, MDB_dbi dbi, std::string_view from, std::size_t max_entries,
                       const std::function<walk_step(const MDB_val& key, const MDB_val& value)>& step) {
  check_usable(tx);
  int rc = MDB_SUCCESS;
  cursor cur(tx.get(), dbi, rc);
  if (rc != MDB_SUCCESS)
    fail(tx, rc);
  MDB_val k = to_val(from);
  MDB_val v{};
  std::size_t deleted = 0;
  rc = mdb_cursor_get(cur.get(), &k, &v, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == MDB_SUCCESS && deleted < max_entries) {
    const walk_step what = step(k, v);
    if (what == walk_step::stop)
      break;
    if (what == walk_step::erase) {
      log_del(tx, dbi, to_view(k));  // before the delete: k points into the page
      if (rc = mdb_cursor_del(cur.get(), 0); rc != MDB_SUCCESS)
        fail(tx, rc);
      ++deleted;
    }
    // After a delete, MDB_NEXT yields the entry that followed the deleted one.
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    fail(tx, rc);
  return deleted;
}

std::size_t erase_front_while(write_txn& tx, MDB_dbi dbi, std::size_t max_entries,
                              const std::function<bool(const MDB_val& key)>& expired) {
  return erase_walk(tx, dbi, {}, max_entries, [&](const MDB_val& k, const MDB_val&) {
    return expired(k) ? walk_step::erase : walk_step::stop;
  });
}

std::size_t erase_if(write_txn& tx, MDB_dbi dbi,
                     const std::function<bool(std::string_view key, const MDB_val& value)>& match) {
  return erase_walk(tx, dbi, {}, std::numeric_limits<std::size_t>::max(), [&](const MDB_val& k, const MDB_val& v) {
    return match(to_view(k), v) ? walk_step::erase : walk_step::keep;
  });
}

}  // namespace nudge::storage::detail
