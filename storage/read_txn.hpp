// A read-only LMDB transaction (MDB_RDONLY): a consistent snapshot of every table.
//
// Obtained from env::read(); move-only; ends (and returns its handle to the env's
// pool) when destroyed. The env is opened with MDB_NOTLS, so a read_txn may be used
// from any thread, but by one thread at a time. It must be destroyed before its env.
//
// While it lives it holds a reader share of the env's resize gate: the writer cannot
// grow the map until it ends. Keep it short (decode or copy, then drop it), and never
// hold one on the writer thread while calling env::commit (that would wait forever on
// a map growth). A thread may hold several at once. Values read through it point into
// the map and die with it; the table functions return copies.
#pragma once

#include <lmdb.h>

namespace nudge::storage {

class env;

class read_txn {
 public:
  read_txn() noexcept = default;
  read_txn(read_txn&& other) noexcept;
  read_txn& operator=(read_txn&& other) noexcept;
  read_txn(const read_txn&) = delete;
  read_txn& operator=(const read_txn&) = delete;
  ~read_txn();

  /// The LMDB handle; nullptr when the transaction could not begin (see env::read).
  MDB_txn* get() const noexcept { return txn_; }
  explicit operator bool() const noexcept { return txn_ != nullptr; }

  /// The env it reads; only valid while get() != nullptr.
  const class env& environment() const noexcept { return *env_; }

  /// Ends the transaction now (the destructor does the same).
  void reset() noexcept;

 private:
  friend class env;
  read_txn(const class env* e, MDB_txn* txn) noexcept : env_(e), txn_(txn) {}

  const class env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
};

}  // namespace nudge::storage
