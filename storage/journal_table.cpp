#include "storage/journal_table.hpp"

#include <string>

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::journal_table {
namespace {

constexpr std::size_t seq_bytes = 8;

void make_key(std::string& key, std::string_view profile_id, std::uint64_t seq) {
  key.clear();
  key.reserve(profile_id.size() + 1 + seq_bytes);
  key.append(profile_id);
  key.push_back('\0');
  detail::append_be64(key, seq);
}

// The seq of `key` when it is an entry of the profile whose prefix (id + '\0') is
// `prefix`; nullopt for any other key.
std::optional<std::uint64_t> seq_of(const MDB_val& key, std::string_view prefix) {
  auto k = detail::to_view(key);
  if (k.size() != prefix.size() + seq_bytes || k.substr(0, prefix.size()) != prefix)
    return std::nullopt;
  return detail::read_be64(k.data() + prefix.size());
}

// Deletes the profile's entries from the first one up to seq `upto`.
std::size_t delete_through(write_txn& tx, std::string_view profile_id, std::uint64_t upto) {
  detail::check_usable(tx);
  std::string& key = detail::key_buffer(tx);
  make_key(key, profile_id, 0);
  const std::string_view prefix(key.data(), profile_id.size() + 1);

  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().journal(), rc);
  if (rc != MDB_SUCCESS)
    detail::fail(tx, rc);
  MDB_val k = detail::to_val(key);
  MDB_val v{};
  std::size_t deleted = 0;
  rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    auto seq = seq_of(k, prefix);
    if (!seq || *seq > upto)
      break;
    if (rc = mdb_cursor_del(cur.get(), 0); rc != MDB_SUCCESS)
      detail::fail(tx, rc);
    ++deleted;
    // After a delete LMDB's MDB_NEXT yields the entry that followed the deleted one.
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    detail::fail(tx, rc);
  return deleted;
}

}  // namespace

void append(write_txn& tx, std::string_view profile_id, const journal_entry& entry) {
  detail::check_usable(tx);
  auto& buffer = detail::value_buffer(tx);
  encode(entry, buffer);
  std::string& key = detail::key_buffer(tx);
  make_key(key, profile_id, entry.seq);
  detail::put(tx, tx.environment().journal(), key,
              std::string_view(buffer.data(), buffer.size()));
}

std::vector<journal_entry> read_after(read_txn& tx, std::string_view profile_id,
                                      std::uint64_t after_seq, std::error_code& ec) {
  ec.clear();
  std::vector<journal_entry> out;
  if (!tx) {
    ec = errc::txn_failed;
    return out;
  }
  if (after_seq == UINT64_MAX)
    return out;
  std::string key;
  make_key(key, profile_id, after_seq + 1);
  const std::string_view prefix(key.data(), profile_id.size() + 1);

  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().journal(), rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return out;
  }
  MDB_val k = detail::to_val(key);
  MDB_val v{};
  for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    auto seq = seq_of(k, prefix);
    if (!seq)
      break;
    journal_entry& entry = out.emplace_back();
    if ((ec = decode(detail::to_bytes(v), entry)) || entry.seq != *seq) {
      ec = errc::corrupt;
      out.clear();
      return out;
    }
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
    ec = detail::from_mdb(rc);
    out.clear();
  }
  return out;
}

std::uint64_t last_seq(read_txn& tx, std::string_view profile_id, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return 0;
  }
  // Position just past the profile's range (prefix with seq = max is its upper
  // bound), then step back.
  std::string key;
  make_key(key, profile_id, UINT64_MAX);
  const std::string_view prefix(key.data(), profile_id.size() + 1);
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().journal(), rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return 0;
  }
  MDB_val k = detail::to_val(key);
  MDB_val v{};
  rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  if (rc == MDB_SUCCESS) {
    if (auto seq = seq_of(k, prefix); seq && *seq == UINT64_MAX)
      return *seq;
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_PREV);
  } else if (rc == MDB_NOTFOUND) {
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_LAST);
  }
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return 0;
  }
  return seq_of(k, prefix).value_or(0);
}

std::size_t prune(write_txn& tx, std::string_view profile_id, std::uint64_t upto_seq) {
  return delete_through(tx, profile_id, upto_seq);
}

std::size_t erase_all(write_txn& tx, std::string_view profile_id) {
  return delete_through(tx, profile_id, UINT64_MAX);
}

}  // namespace nudge::storage::journal_table
