// The process's one LMDB environment: data.mdb in env_options::dir, with every named
// table opened at start.
//
// Created first and destroyed last by app/ (every read_txn must end before it does).
// Threads:
//  - read() and the const accessors may be called from any thread;
//  - commit() and sync() only from the writer (one thread, or one detached actor);
//  - copy_to() from any thread, also while writes go on.
// Not-found is never an error; failures are storage::errc codes.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <msgpack/sbuffer.hpp>

#include "storage/commit_log.hpp"
#include "storage/env_options.hpp"
#include "storage/env_stats.hpp"
#include "storage/errc.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage {

class env {
 public:
  /// The value of meta key "schema_version" that this build writes and accepts.
  /// "2": snapshots keep their decision log in the decision_chunks table; "3": their
  /// history too, in history_chunks; "4": their seen messages too, in seen_chunks. A
  /// build of an older one would see profiles without those records, so it refuses
  /// the data dir. A dir of "1", "2" or "3" is read as it is (its snapshots keep those
  /// logs inline) and marked "4" on open.
  static constexpr std::string_view schema_version = "4";
  static constexpr std::string_view schema_versions_upgraded[] = {"1", "2", "3"};

  /// Opens (creating if needed) the environment: MDB_NOTLS | MDB_NORDAHEAD, plus
  /// MDB_WRITEMAP | MDB_NOSYNC unless options.sync_each_commit (then LMDB writes and
  /// syncs each commit itself, env.cpp says why), 32 named dbs, 512 readers; clears stale reader slots
  /// (mdb_reader_check); opens every table in one committed transaction and checks
  /// the stored schema version (errc::corrupt when it is another one).
  /// Returns nullptr and sets `ec` (io_error, corrupt, txn_failed) on failure.
  static std::unique_ptr<env> open(const env_options& options, std::error_code& ec);

  ~env();
  env(const env&) = delete;
  env& operator=(const env&) = delete;

  /// Begins a read-only transaction, reusing a pooled handle when one is free. Waits
  /// while the writer grows the map. On failure (e.g. MDB_READERS_FULL) the returned
  /// txn is empty (`!txn`) and every table read through it reports txn_failed.
  read_txn read() const;
  read_txn read(std::error_code& ec) const;

  /// How far a commit may grow the map.
  enum class commit_mode {
    normal,   ///< up to map_size_max
    /// A commit that frees space (erasures): deleting needs new pages first (copy on
    /// write), so a full map could never be emptied. It may grow the map up to
    /// map_size_max + reclaim_reserve(); afterwards the map shrinks back as far as
    /// its used pages allow, and later commits reuse the freed pages.
    reclaim,
    reclaim_step,  ///< internal: the second commit of a reclaim (see env.cpp)
  };

  /// Room past map_size_max for reclaiming commits: map_size_max / 16, clamped to
  /// [4 MiB, 1 GiB].
  std::uint64_t reclaim_reserve() const noexcept;

  /// Runs `apply` inside ONE write transaction and commits it.
  /// On MDB_MAP_FULL: aborts, grows the map (doubling, capped at map_size_max; waits
  /// until no read_txn is open) and runs `apply` again from scratch, so `apply` must
  /// be re-runnable and must not act outside the transaction. Returns
  ///  - errc::map_full when map_size_max is not enough (nothing was written, the env
  ///    stays usable for smaller commits),
  ///  - errc::txn_failed when `apply` threw, or LMDB refused an operation or commit,
  ///  - errc::io_error when the commit or (sync_each_commit) its sync failed to reach
  ///    the disk: a failed data sync leaves the commit undone; after a failed sync of
  ///    the meta page (or without sync_each_commit) the data may be committed
  ///    without being durable.
  ///  - errc::disk_full, before any write, when the blocks the commit may use could
  ///    not be allocated (see env_options::preallocate_ahead); nothing was written,
  ///    the env stays usable and a later commit tries the allocation again.
  /// The caller keeps the other failures sticky (the writer refuses further writes).
  /// Writer thread only; never while this thread holds a read_txn.
  std::error_code commit(const std::function<void(write_txn&)>& apply,
                         commit_mode mode = commit_mode::normal);

  /// Flushes committed data to disk (mdb_env_sync force; with the commit log, a sync
  /// of the log that also voids on disk a record whose commit failed). Writer thread,
  /// or after it stopped. io_error on failure.
  std::error_code sync();

  /// True when commit() waits on the disk before it returns (sync_each_commit, or the
  /// commit log): a commit then belongs on a thread of its own. Any thread.
  bool commits_sync() const noexcept { return options_.sync_each_commit || log_ != nullptr; }

  /// With the commit log: a checkpoint now (env.cpp, "The commit log"): the data file
  /// synced and named in log/checkpoint, the log before it released; the checkpointing
  /// thread does the same every log_checkpoint_interval or log_checkpoint_bytes.
  /// Nothing without the log. Any thread that is not inside commit(). io_error or
  /// corrupt on failure (the previous checkpoint stays).
  std::error_code checkpoint() { return log_ != nullptr ? checkpoint_once() : std::error_code{}; }

  /// Whether commits go through the commit log (options().commit_log, unless LMDB's
  /// meta pages did not read as expected: then LMDB syncs each commit itself).
  bool has_commit_log() const noexcept { return log_ != nullptr; }

  /// True when the next commit would first allocate file blocks (a fallocate, see
  /// reserve_space): a commit that must not wait on the file system leaves it to the
  /// writer thread. Any thread; reads atomics only.
  bool reserve_due() const noexcept;

  /// True when a quarter of the allocation ahead (env_options::preallocate_ahead) is
  /// used: the writer should top it up (top_up()) before commits need it. False after
  /// a failed top-up until a commit's own allocation succeeds, so that a full disk is
  /// not retried in a loop. Any thread; reads atomics only.
  bool top_up_due() const noexcept;

  /// Allocates file blocks up to used + preallocate_ahead when top_up_due(). Commits
  /// on other threads go on meanwhile: they write only below the allocated end, which
  /// this only moves forward. The writer thread, outside a commit.
  void top_up();

  /// True when preallocated pages past the used end are not yet mapped writable
  /// (env_options::prefault). Any thread; reads atomics only.
  bool prefault_due() const noexcept;

  /// Maps up to `max_bytes` more of the preallocated pages past the used end into
  /// the process writable (MADV_POPULATE_WRITE): the page cache pages are made and
  /// marked dirty, their contents unchanged, so that the commit that first writes
  /// each one takes no page fault (measured: a fifth to a quarter of the committing
  /// I/O thread's page faults and ~7% of its time, docs/BENCHMARKS.md). Waits out a
  /// map growth like a reader does. Returns the bytes mapped; 0 when nothing is due,
  /// and for good when the kernel cannot (before 5.14) or the mapping is not found.
  /// The writer thread, between commits (the journal calls it when idle).
  std::size_t prefault_some(std::size_t max_bytes);

  /// Periodic upkeep, cheap when not due: every options().reader_check_interval it
  /// clears reader slots of dead processes (check_readers()) and tops up the
  /// preallocation while the writer is idle. Writer thread only.
  void housekeeping();

  /// Clears reader slots left by dead processes (mdb_reader_check); returns how many
  /// and adds them to stats().readers_cleared. Any thread; does not wait for readers.
  std::size_t check_readers();

  /// Space and reader slots now. Any thread.
  env_stats stats() const;

  /// Current map size in bytes; grows, never shrinks while open. Any thread.
  std::uint64_t map_size() const noexcept { return map_size_.load(std::memory_order_relaxed); }

  const env_options& options() const noexcept { return options_; }

  // The named tables, valid for the env's lifetime.
  MDB_dbi profiles() const noexcept { return profiles_; }
  MDB_dbi decision_chunks() const noexcept { return decision_chunks_; }
  MDB_dbi history_chunks() const noexcept { return history_chunks_; }
  MDB_dbi seen_chunks() const noexcept { return seen_chunks_; }
  MDB_dbi journal() const noexcept { return journal_; }
  MDB_dbi identities() const noexcept { return identities_; }
  MDB_dbi aliases() const noexcept { return aliases_; }
  MDB_dbi dedupe() const noexcept { return dedupe_; }
  MDB_dbi dedupe_by_time() const noexcept { return dedupe_by_time_; }
  MDB_dbi meta() const noexcept { return meta_; }
  MDB_dbi timers() const noexcept { return timers_; }
  MDB_dbi timer_owners() const noexcept { return timer_owners_; }
  MDB_dbi outbox() const noexcept { return outbox_; }
  MDB_dbi outbox_failed() const noexcept { return outbox_failed_; }
  /// The identity index read the other way: profile id → its identities.
  MDB_dbi members() const noexcept { return members_; }
  MDB_dbi audit() const noexcept { return audit_; }
  MDB_dbi suppression() const noexcept { return suppression_; }
  MDB_dbi expiry() const noexcept { return expiry_; }
  MDB_dbi expiry_owner() const noexcept { return expiry_owner_; }

  /// Writes a consistent, compacted copy (mdb_env_copy2, MDB_CP_COMPACT) of the
  /// committed state to `dir`/data.mdb, creating `dir` (0700) if missing; it must not
  /// already hold a data.mdb. Only live pages are copied, so data erased before the
  /// copy is not in it. Safe while writes go on; delays map growth until it is done.
  /// io_error on failure. Any thread.
  std::error_code copy_to(const std::filesystem::path& dir) const;

  /// A backup with no remnant of erased data: copy_to() into `dir`/.compact, then
  /// every record of every table rewritten in key order into fresh pages of
  /// `dir`/data.mdb, and the temporary copy removed. (LMDB's compacted copy keeps
  /// pages whole, and a live page can still hold the bytes of records deleted from
  /// it; the rewrite leaves only live records in the file.) Same conditions as
  /// copy_to(); io_error, or map_full / txn_failed from the rewrite. Any thread.
  std::error_code scrubbed_copy_to(const std::filesystem::path& dir) const;

  /// Number of entries in `dbi` at the latest commit (mdb_stat ms_entries); 0 when
  /// no read transaction could begin. Any thread.
  std::uint64_t entries(MDB_dbi dbi) const;

  /// The raw LMDB environment, for tools and tests.
  MDB_env* get() const noexcept { return env_; }

 private:
  friend class read_txn;

  explicit env(const env_options& options) : options_(options) {}

  std::error_code open_tables();
  /// commit() with the commit lock held (or none needed).
  std::error_code commit_locked(const std::function<void(write_txn&)>& apply, commit_mode mode);
  std::error_code resize_map(std::uint64_t new_size);
  std::error_code reserve_space();
  /// One fallocate up to used + preallocate_ahead; false when the disk refused it.
  bool allocate_ahead();
  void note_used() noexcept;
  /// Finds LMDB's map of data.mdb in /proc/self/maps (by device and inode): LMDB
  /// does not say where it mapped the file. Null when not found. Under the gate's
  /// lock or before any other thread uses the env.
  char* find_map_base() const;
  void enter_reader() const;
  void leave_reader(MDB_txn* txn) const noexcept;
  /// At open, before LMDB maps the file: reads the checkpoint and rolls data.mdb's meta
  /// pages back to its transaction when they name another one.
  std::error_code roll_back_to_checkpoint(std::optional<commit_log::checkpoint>& ckpt);
  /// At open, after the tables: replays the log over the checkpoint, syncs, and either
  /// starts the log (commit_log) or removes it.
  std::error_code start_log(const std::optional<commit_log::checkpoint>& ckpt);
  /// Pins the newest transaction, syncs the data file, names the transaction in the
  /// checkpoint file, then releases the log before it. The checkpointing thread, or
  /// open and close.
  std::error_code checkpoint_once();
  void run_checkpoints();

  env_options options_;
  MDB_env* env_ = nullptr;
  MDB_dbi profiles_ = 0;
  MDB_dbi decision_chunks_ = 0;
  MDB_dbi history_chunks_ = 0;
  MDB_dbi seen_chunks_ = 0;
  MDB_dbi journal_ = 0;
  MDB_dbi identities_ = 0;
  MDB_dbi aliases_ = 0;
  MDB_dbi dedupe_ = 0;
  MDB_dbi dedupe_by_time_ = 0;
  MDB_dbi meta_ = 0;
  MDB_dbi timers_ = 0;
  MDB_dbi timer_owners_ = 0;
  MDB_dbi outbox_ = 0;
  MDB_dbi outbox_failed_ = 0;
  MDB_dbi members_ = 0;
  MDB_dbi audit_ = 0;
  MDB_dbi suppression_ = 0;
  MDB_dbi expiry_ = 0;
  MDB_dbi expiry_owner_ = 0;
  std::atomic<std::uint64_t> map_size_{0};

  // Preallocation (writer thread; the atomics are read by stats() and by commits on
  // other threads).
  int data_fd_ = -1;
  std::uint64_t page_size_ = 4096;
  std::atomic<bool> preallocate_{true};  // false when the file system cannot fallocate
  std::atomic<bool> top_up_failed_{false};
  std::mutex allocate_mtx_;  // one fallocate at a time, allocated_bytes_ only grows
  std::atomic<std::uint64_t> used_bytes_{0};
  std::atomic<std::uint64_t> allocated_bytes_{0};
  // Prefaulting (env_options::prefault): where LMDB mapped the file (set under the
  // gate's lock: a map growth may move it) and how far from the start the pages are
  // mapped writable; prefault_ turns false for good when the kernel cannot.
  char* map_base_ = nullptr;
  std::atomic<bool> prefault_{false};
  std::atomic<std::uint64_t> prefaulted_bytes_{0};
  std::atomic<std::uint64_t> disk_full_refusals_{0};
  std::atomic<std::uint64_t> readers_cleared_{0};
  std::chrono::steady_clock::time_point next_housekeeping_{};

  // The resize gate: readers count themselves in; a map growth waits for zero and
  // holds new readers back meanwhile (mdb_env_set_mapsize needs no live txn). It
  // also guards the pool of reset read handles.
  mutable std::mutex gate_mutex_;
  mutable std::condition_variable gate_cv_;
  mutable std::size_t readers_ = 0;
  mutable bool resizing_ = false;
  mutable std::vector<MDB_txn*> read_pool_;

  // Writer-thread scratch, reused by every commit.
  msgpack::sbuffer value_buffer_;
  std::string key_buffer_;

  // The commit log (env_options::commit_log; env.cpp, "The commit log").
  std::unique_ptr<commit_log> log_;
  commit_log::table_map log_tables_;
  std::string log_ops_;             ///< the payload of the commit being built
  std::mutex commit_mtx_;           ///< a commit, or a checkpoint's pin, at a time
  std::mutex checkpoint_run_mtx_;   ///< one checkpoint_once() at a time
  MDB_txn* log_pin_ = nullptr;      ///< the checkpoint's transaction, held open: its pages stay
  std::atomic<std::uint64_t> log_bytes_{0};  ///< appended since the last checkpoint's pin
  std::atomic<std::uint64_t> log_checkpoints_{0};
  std::atomic<std::uint64_t> log_checkpoint_failures_{0};
  std::uint64_t log_records_replayed_ = 0;
  std::thread checkpointer_;
  std::mutex checkpoint_mtx_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_stop_ = false;
};

}  // namespace nudge::storage
