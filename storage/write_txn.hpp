// The one write transaction of an env::commit, handed to its `apply` callback.
//
// Exists only inside env::commit, on the writer thread. The table functions that take
// it (profile_table::put, journal_table::append, ...) write through it. When LMDB
// refuses an operation (map full, a key too long, I/O), the table function records the
// error here and unwinds `apply` with an internal exception that env::commit catches:
// let it pass. If `apply` swallows it anyway, commit still sees the recorded error,
// aborts the transaction and reports it; every later write on this txn fails at once.
#pragma once

#include <lmdb.h>

#include <string>

#include <msgpack/sbuffer.hpp>

namespace nudge::storage {

class env;

namespace detail {
struct write_access;
}

class write_txn {
 public:
  write_txn(const write_txn&) = delete;
  write_txn& operator=(const write_txn&) = delete;

  MDB_txn* get() const noexcept { return txn_; }
  const class env& environment() const noexcept { return *env_; }

  /// True once an operation failed; the transaction will be aborted.
  bool failed() const noexcept { return mdb_rc_ != 0; }

 private:
  friend class env;
  friend struct detail::write_access;

  write_txn(const class env* e, MDB_txn* txn, msgpack::sbuffer& value_buffer,
            std::string& key_buffer) noexcept
      : env_(e), txn_(txn), value_buffer_(value_buffer), key_buffer_(key_buffer) {}

  const class env* env_;
  MDB_txn* txn_;
  int mdb_rc_ = 0;  // the first LMDB error; 0 while the txn is usable
  // The commit log's payload for this transaction (commit_log::add_put/add_del), or
  // null when the env keeps no log.
  std::string* log_ = nullptr;
  // Scratch buffers owned by the env and reused across commits, so that encoding a
  // value or building a key does not allocate per record.
  msgpack::sbuffer& value_buffer_;
  std::string& key_buffer_;
};

}  // namespace nudge::storage
