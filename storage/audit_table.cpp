#include "storage/audit_table.hpp"

#include <atomic>
#include <chrono>

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::audit_table {
namespace {

// Starts from the clock so that records of one millisecond written by two runs of
// the process do not collide.
std::atomic<std::uint32_t> next_seq{static_cast<std::uint32_t>(
    std::chrono::steady_clock::now().time_since_epoch().count())};

std::string prefix_of(std::string_view profile_id) {
  std::string p(profile_id);
  p.push_back('\0');
  return p;
}

}  // namespace

void append(write_txn& tx, const audit_record& rec) {
  auto& key = detail::key_buffer(tx);
  key.append(rec.profile_id);
  key.push_back('\0');
  detail::append_be64(key, static_cast<std::uint64_t>(rec.ts.time_since_epoch().count()));
  detail::append_be32(key, next_seq.fetch_add(1, std::memory_order_relaxed));
  auto& buf = detail::value_buffer(tx);
  encode(rec, buf);
  detail::put(tx, tx.environment().audit(), key, {buf.data(), buf.size()});
}

std::vector<audit_record> read(read_txn& tx, std::string_view profile_id, std::error_code& ec,
                               std::size_t max) {
  ec.clear();
  std::vector<audit_record> out;
  if (!tx) {
    ec = errc::txn_failed;
    return out;
  }
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().audit(), rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return out;
  }
  const std::string prefix = prefix_of(profile_id);
  MDB_val k = detail::to_val(prefix);
  MDB_val v{};
  rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS && out.size() < max) {
    auto key = detail::to_view(k);
    if (key.substr(0, prefix.size()) != prefix)
      break;
    audit_record rec;
    if (auto dec = decode(detail::to_bytes(v), rec)) {
      ec = dec;
      return out;
    }
    rec.profile_id = std::string(profile_id);
    out.push_back(std::move(rec));
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    ec = detail::from_mdb(rc);
  return out;
}

std::size_t move_all(write_txn& tx, std::string_view from, std::string_view to) {
  if (from.empty() || from == to)
    return 0;
  detail::check_usable(tx);
  std::vector<audit_record> moved;
  {
    // Read through the write txn (it sees its own writes), then rewrite under `to`.
    int rc = MDB_SUCCESS;
    detail::cursor cur(tx.get(), tx.environment().audit(), rc);
    if (rc != MDB_SUCCESS)
      detail::fail(tx, rc);
    const std::string prefix = prefix_of(from);
    MDB_val k = detail::to_val(prefix);
    MDB_val v{};
    for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
         rc == MDB_SUCCESS && detail::to_view(k).substr(0, prefix.size()) == prefix;
         rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      audit_record rec;
      if (!decode(detail::to_bytes(v), rec)) {
        rec.profile_id = std::string(to);
        moved.push_back(std::move(rec));
      }
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
      detail::fail(tx, rc);
  }
  erase_profile(tx, from);
  for (const auto& rec : moved)
    append(tx, rec);
  return moved.size();
}

std::size_t erase_profile(write_txn& tx, std::string_view profile_id) {
  if (profile_id.empty())
    return 0;
  return detail::erase_prefix(tx, tx.environment().audit(), prefix_of(profile_id));
}

}  // namespace nudge::storage::audit_table
