// Internal helpers shared by the table implementations: MDB_val conversions,
// big-endian keys, LMDB return codes to errc, and the write-failure path.
// Not for use outside storage/.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <msgpack/sbuffer.hpp>

#include "storage/errc.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::detail {

/// Thrown by a failing write operation to unwind `apply`; caught by env::commit.
struct txn_aborted {};

struct write_access {
  static int& rc(write_txn& tx) noexcept { return tx.mdb_rc_; }
  static msgpack::sbuffer& value_buffer(write_txn& tx) noexcept { return tx.value_buffer_; }
  static std::string& key_buffer(write_txn& tx) noexcept { return tx.key_buffer_; }
  static std::string* log(write_txn& tx) noexcept { return tx.log_; }
};

/// Records a put / a delete in the transaction's commit log payload, if it keeps one.
/// Every write to the env goes through put(), put_last(), del(), the erase functions
/// below or these two.
void log_put(write_txn& tx, MDB_dbi dbi, std::string_view key, std::string_view value);
void log_del(write_txn& tx, MDB_dbi dbi, std::string_view key);

inline MDB_val to_val(std::string_view s) noexcept {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view to_view(const MDB_val& v) noexcept {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}
inline std::span<const std::byte> to_bytes(const MDB_val& v) noexcept {
  return {static_cast<const std::byte*>(v.mv_data), v.mv_size};
}

inline void append_be32(std::string& out, std::uint32_t x) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((x >> shift) & 0xff));
}
inline void write_be64(char* out, std::uint64_t x) noexcept {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((x >> (56 - 8 * i)) & 0xff);
}
inline void append_be64(std::string& out, std::uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((x >> shift) & 0xff));
}
inline std::uint32_t read_be32(const char* p) noexcept {
  std::uint32_t x = 0;
  for (int i = 0; i < 4; ++i)
    x = (x << 8) | static_cast<unsigned char>(p[i]);
  return x;
}
inline std::uint64_t read_be64(const char* p) noexcept {
  std::uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<unsigned char>(p[i]);
  return x;
}

/// The errc for an LMDB (or errno) return code other than 0 and MDB_NOTFOUND.
errc from_mdb(int rc) noexcept;

/// Fails the write transaction with `rc` (keeps the first error) and unwinds.
[[noreturn]] void fail(write_txn& tx, int rc);

/// Throws txn_aborted if the transaction already failed.
inline void check_usable(write_txn& tx) {
  if (tx.failed())
    throw txn_aborted{};
}

/// mdb_get on a read transaction: the value, nullopt on MDB_NOTFOUND; on another
/// failure (or an empty read_txn) sets `ec` and returns nullopt.
std::optional<MDB_val> get(const read_txn& tx, MDB_dbi dbi, std::string_view key,
                           std::error_code& ec) noexcept;

/// mdb_put; fails the transaction on error.
void put(write_txn& tx, MDB_dbi dbi, std::string_view key, std::string_view value);

/// The same, for a key that usually sorts after every key of `dbi` (keys put in
/// ascending order): MDB_APPEND then goes straight to the last leaf, skipping the binary
/// search on every level from the root; a key that does not sort after the last one
/// (LMDB answers MDB_KEYEXIST and changes nothing) is put the usual way, replacing an
/// equal key as put() does.
void put_last(write_txn& tx, MDB_dbi dbi, std::string_view key, std::string_view value);

/// mdb_del; false when the key was absent; fails the transaction on other errors.
bool del(write_txn& tx, MDB_dbi dbi, std::string_view key);

/// What erase_walk() does with an entry.
enum class walk_step { erase, keep, stop };

/// One cursor walk over `dbi` in key order from the first key at or above `from` (the
/// first key when `from` is empty): erases, keeps or stops at each entry as
/// `step(key, value)` says, and stops after `max_entries` erasures; returns how many.
/// Fails the transaction on LMDB errors.
std::size_t erase_walk(write_txn& tx, MDB_dbi dbi, std::string_view from, std::size_t max_entries,
                       const std::function<walk_step(const MDB_val& key, const MDB_val& value)>& step);

/// Deletes every entry of `dbi` with a key from `from` up to, not including,
/// `before` (to the end without one), in LMDB's default key order; returns how
/// many. Fails the transaction on LMDB errors.
std::size_t erase_range(write_txn& tx, MDB_dbi dbi, std::string_view from,
                        std::optional<std::string_view> before);

/// Deletes every entry of `dbi` whose key starts with `prefix` (a non-empty one);
/// returns how many. Fails the transaction on LMDB errors.
std::size_t erase_prefix(write_txn& tx, MDB_dbi dbi, std::string_view prefix);

/// Deletes entries from the front of `dbi` (smallest keys first) while
/// `expired(key)` holds, at most `max_entries`; returns how many. Fails the
/// transaction on LMDB errors.
std::size_t erase_front_while(write_txn& tx, MDB_dbi dbi, std::size_t max_entries,
                              const std::function<bool(const MDB_val& key)>& expired);

/// Deletes every entry of `dbi` for which `match(key, value)` holds: a scan of the
/// whole table, for rare calls (erasure). Returns how many.
std::size_t erase_if(write_txn& tx, MDB_dbi dbi,
                     const std::function<bool(std::string_view key, const MDB_val& value)>& match);

/// The encoded value in the txn's scratch buffer, cleared first.
inline msgpack::sbuffer& value_buffer(write_txn& tx) noexcept {
  auto& b = write_access::value_buffer(tx);
  b.clear();
  return b;
}
inline std::string& key_buffer(write_txn& tx) noexcept {
  auto& k = write_access::key_buffer(tx);
  k.clear();
  return k;
}

/// RAII cursor over one table; closes on destruction.
class cursor {
 public:
  cursor(MDB_txn* txn, MDB_dbi dbi, int& rc) noexcept { rc = mdb_cursor_open(txn, dbi, &c_); }
  ~cursor() {
    if (c_)
      mdb_cursor_close(c_);
  }
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;
  MDB_cursor* get() const noexcept { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
};

}  // namespace nudge::storage::detail
