#include "storage/journal_table.hpp"

#include <algorithm>
#include <string>

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::journal_table {
namespace {

constexpr std::size_t key_bytes = 8;
constexpr std::size_t id_length_bytes = 2;
constexpr std::size_t seq_bytes = 8;

struct parsed_value {
  std::string_view profile_id;
  std::uint64_t seq = 0;
  std::span<const std::byte> entry;  ///< the msgpack journal_entry
};

std::optional<parsed_value> parse(const MDB_val& v) {
  auto s = detail::to_view(v);
  if (s.size() < id_length_bytes)
    return std::nullopt;
  const std::size_t n = (static_cast<std::size_t>(static_cast<unsigned char>(s[0])) << 8) |
                        static_cast<unsigned char>(s[1]);
  if (s.size() < id_length_bytes + n + seq_bytes)
    return std::nullopt;
  parsed_value out;
  out.profile_id = s.substr(id_length_bytes, n);
  out.seq = detail::read_be64(s.data() + id_length_bytes + n);
  const std::size_t head = id_length_bytes + n + seq_bytes;
  out.entry = detail::to_bytes(v).subspan(head);
  return out;
}

std::optional<std::uint64_t> position_of(const MDB_val& key) {
  if (key.mv_size != key_bytes)
    return std::nullopt;
  return detail::read_be64(static_cast<const char*>(key.mv_data));
}

void make_key(std::string& key, std::uint64_t position) {
  key.clear();
  detail::append_be64(key, position);
}

// Appends the value's header (id length, id, seq) to `out`.
void write_header(msgpack::sbuffer& out, std::string_view profile_id, std::uint64_t seq) {
  const char len[id_length_bytes] = {static_cast<char>((profile_id.size() >> 8) & 0xff),
                                     static_cast<char>(profile_id.size() & 0xff)};
  out.write(len, id_length_bytes);
  out.write(profile_id.data(), profile_id.size());
  char be[seq_bytes];
  detail::write_be64(be, seq);
  out.write(be, seq_bytes);
}

void put_append(write_txn& tx, std::string_view key, const msgpack::sbuffer& value) {
  MDB_val k = detail::to_val(key);
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  if (int rc = mdb_put(tx.get(), tx.environment().journal(), &k, &v, MDB_APPEND); rc != MDB_SUCCESS)
    detail::fail(tx, rc);
  detail::log_put(tx, tx.environment().journal(), key, {value.data(), value.size()});
}

std::uint64_t next_after_last(MDB_txn* txn, MDB_dbi dbi, int& rc) {
  detail::cursor cur(txn, dbi, rc);
  if (rc != MDB_SUCCESS)
    return 0;
  MDB_val k{};
  MDB_val v{};
  rc = mdb_cursor_get(cur.get(), &k, &v, MDB_LAST);
  if (rc == MDB_NOTFOUND) {
    rc = MDB_SUCCESS;
    return 1;
  }
  if (rc != MDB_SUCCESS)
    return 0;
  auto pos = position_of(k);
  if (!pos) {
    rc = MDB_CORRUPTED;
    return 0;
  }
  return *pos + 1;
}

}  // namespace

std::uint64_t next_position(read_txn& tx, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return 0;
  }
  int rc = MDB_SUCCESS;
  auto next = next_after_last(tx.get(), tx.environment().journal(), rc);
  if (rc != MDB_SUCCESS)
    ec = detail::from_mdb(rc);
  return next;
}

std::uint64_t next_position(write_txn& tx) {
  detail::check_usable(tx);
  int rc = MDB_SUCCESS;
  auto next = next_after_last(tx.get(), tx.environment().journal(), rc);
  if (rc != MDB_SUCCESS)
    detail::fail(tx, rc);
  return next;
}

void append(write_txn& tx, std::uint64_t position, std::string_view profile_id,
            const journal_entry& entry) {
  detail::check_usable(tx);
  if (profile_id.size() > 0xffff)
    detail::fail(tx, EINVAL);
  auto& buffer = detail::value_buffer(tx);
  write_header(buffer, profile_id, entry.seq);
  encode(entry, buffer);
  std::string& key = detail::key_buffer(tx);
  make_key(key, position);
  put_append(tx, key, buffer);
}

std::optional<journal_entry> get(read_txn& tx, std::uint64_t position, std::string_view profile_id,
                                 std::error_code& ec) {
  ec.clear();
  std::string key;
  make_key(key, position);
  auto v = detail::get(tx, tx.environment().journal(), key, ec);
  if (!v)
    return std::nullopt;
  auto parsed = parse(*v);
  if (!parsed) {
    ec = errc::corrupt;
    return std::nullopt;
  }
  if (parsed->profile_id != profile_id)
    return std::nullopt;
  journal_entry out;
  if ((ec = decode(parsed->entry, out)) || out.seq != parsed->seq) {
    ec = errc::corrupt;
    return std::nullopt;
  }
  return out;
}

void scan(read_txn& tx, const std::function<bool(const entry_header&)>& fn, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return;
  }
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().journal(), rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return;
  }
  MDB_val k{};
  MDB_val v{};
  for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    auto pos = position_of(k);
    auto parsed = parse(v);
    if (!pos || !parsed) {
      ec = errc::corrupt;
      return;
    }
    if (!fn(entry_header{*pos, parsed->profile_id, parsed->seq}))
      return;
  }
  if (rc != MDB_NOTFOUND)
    ec = detail::from_mdb(rc);
}

std::vector<std::uint64_t> positions_of(read_txn& tx, std::string_view profile_id, std::error_code& ec) {
  std::vector<std::uint64_t> out;
  scan(tx, [&](const entry_header& h) {
    if (h.profile_id == profile_id)
      out.push_back(h.position);
    return true;
  }, ec);
  if (ec)
    out.clear();
  return out;
}

std::size_t drop_before(write_txn& tx, std::uint64_t position, std::size_t max_entries) {
  return detail::erase_front_while(tx, tx.environment().journal(), max_entries, [position](const MDB_val& k) {
    auto pos = position_of(k);
    return pos && *pos < position;
  });
}

std::size_t drop_except(write_txn& tx, std::uint64_t& from, std::uint64_t below,
                        std::span<const std::uint64_t> keep, std::size_t max_entries) {
  if (max_entries == 0)
    return 0;
  std::string start;
  make_key(start, from);
  auto kept = std::lower_bound(keep.begin(), keep.end(), from);
  std::uint64_t last = from;  // the last position the walk looked at
  const std::size_t deleted =
      detail::erase_walk(tx, tx.environment().journal(), start, max_entries, [&](const MDB_val& k, const MDB_val&) {
        auto pos = position_of(k);
        if (!pos || *pos >= below)
          return detail::walk_step::stop;
        last = *pos;
        while (kept != keep.end() && *kept < *pos)
          ++kept;
        return kept != keep.end() && *kept == *pos ? detail::walk_step::keep : detail::walk_step::erase;
      });
  // Stopped by the bound on deletions: the next call goes on after the last one.
  from = deleted == max_entries ? last + 1 : below;
  return deleted;
}

std::size_t erase_profiles(write_txn& tx, const std::vector<std::string>& profile_ids) {
  return detail::erase_if(tx, tx.environment().journal(), [&](std::string_view, const MDB_val& v) {
    auto parsed = parse(v);
    return parsed && std::find(profile_ids.begin(), profile_ids.end(), parsed->profile_id) != profile_ids.end();
  });
}

std::size_t migrate_keyed(write_txn& tx, MDB_dbi old_table) {
  detail::check_usable(tx);
  int rc = MDB_SUCCESS;
  std::uint64_t next = next_position(tx);
  std::size_t moved = 0;
  {
    detail::cursor cur(tx.get(), old_table, rc);
    if (rc != MDB_SUCCESS)
      detail::fail(tx, rc);
    MDB_val k{};
    MDB_val v{};
    std::string key;
    msgpack::sbuffer value;
    for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      auto old_key = detail::to_view(k);
      auto nul = old_key.find('\0');
      if (nul == std::string_view::npos || old_key.size() != nul + 1 + seq_bytes)
        continue;  // not an entry of the earlier layout: left out
      value.clear();
      write_header(value, old_key.substr(0, nul), detail::read_be64(old_key.data() + nul + 1));
      value.write(static_cast<const char*>(v.mv_data), v.mv_size);
      make_key(key, next++);
      put_append(tx, key, value);
      ++moved;
    }
    if (rc != MDB_NOTFOUND)
      detail::fail(tx, rc);
  }
  // Only in env::open's first commit, which no commit log records (the open syncs it).
  if (rc = mdb_drop(tx.get(), old_table, 0); rc != MDB_SUCCESS)
    detail::fail(tx, rc);
  return moved;
}

}  // namespace nudge::storage::journal_table
