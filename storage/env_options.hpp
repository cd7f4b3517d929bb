// How the LMDB environment is opened. Filled once by app/ from the [storage] and
// [durability] config sections and validated there; env::open only clamps.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>

namespace nudge::storage {

struct env_options {
  /// Directory holding data.mdb and lock.mdb; created (mode 0700) if missing.
  std::filesystem::path dir;

  /// Map size at open. The map grows (doubling) on MDB_MAP_FULL; an existing file
  /// larger than this is mapped whole.
  std::uint64_t map_size_initial = 16ull << 30;

  /// Growth stops here: a commit that needs more returns errc::map_full.
  std::uint64_t map_size_max = 256ull << 30;

  /// "power" durability: each commit syncs its data pages, then writes and syncs the
  /// meta page (LMDB without MDB_NOSYNC, and without MDB_WRITEMAP: env.cpp).
  /// Otherwise a commit reaches the OS page cache only, which survives a killed
  /// process.
  bool sync_each_commit = false;

  /// "power" durability through the commit log (storage/commit_log.hpp), in place of
  /// sync_each_commit: each commit's puts and deletes are appended to a log segment in
  /// dir/log and synced (one sequential write and fdatasync) before commit() returns;
  /// LMDB commits as in "process" durability, and a checkpointing thread syncs its file
  /// every log_checkpoint_interval or log_checkpoint_bytes of log, after which the log
  /// before it is reused. An open replays the log over the last checkpoint (env.cpp).
  /// LMDB then writes its pages with pwrite (no writable map, whatever writable_map
  /// says: env.cpp).
  bool commit_log = false;
  std::uint64_t log_segment_bytes = 64ull << 20;
  /// Frequent and small: a checkpoint's sync of the data file competes with the log's
  /// appends for the disk (docs/BENCHMARKS.md, "A commit log for power durability").
  std::uint64_t log_checkpoint_bytes = 1ull << 20;
  std::chrono::milliseconds log_checkpoint_interval = std::chrono::milliseconds(100);
  /// A checkpoint writes the data file back in slices of this many bytes, each waited
  /// for, before its fdatasync; 0: the fdatasync alone.
  std::uint64_t log_writeback_slice_bytes = 256u << 10;
  /// Opened beside the serving process on the same dir (a backup): the commit log is
  /// not read or recovered, only the serving process owns it.
  bool secondary = false;

  /// Without sync_each_commit: commits write into a writable map (MDB_WRITEMAP), or,
  /// when false, LMDB writes each commit's pages into the page cache with pwrite (as
  /// with sync_each_commit, without the syncs). Either survives a killed process. The
  /// writable map costs less per commit; but once the kernel has written a page back,
  /// the next write to it takes a fault on the thread that commits, and those faults
  /// bunch up in the kernel's writeback bursts (docs/BENCHMARKS.md, "Without the
  /// writable map in process durability").
  bool writable_map = true;

  /// Disk blocks kept allocated ahead of the used end of data.mdb (fallocate), so
  /// that a full disk refuses a commit (errc::disk_full) instead of raising SIGBUS on
  /// a sparse page of the writable map (without sync_each_commit; with it, the same
  /// refusal before anything is written). The writer tops the allocation up to
  /// used + preallocate_ahead (never past the current map size) once a quarter of it
  /// is used, while commits go on (env::top_up); a commit waits for the allocation
  /// only when less than half is left, and is refused when it fails. 0 turns it off.
  std::uint64_t preallocate_ahead = 64ull << 20;
  /// Whether the writer, when idle, maps the preallocated pages ahead of the used
  /// end into the process writable (madvise MADV_POPULATE_WRITE, Linux 5.14 on;
  /// env::prefault_some). A commit's first write to each new page of the map then
  /// takes no page fault on the thread that commits. Only without sync_each_commit:
  /// LMDB's sync flushes the whole map, and the zero pages made dirty ahead would be
  /// written with the next commit's sync. Only with writable_map: the map is
  /// read-only otherwise.
  bool prefault = true;

  /// How often env::housekeeping() clears reader slots left by dead processes
  /// (mdb_reader_check).
  std::chrono::milliseconds reader_check_interval = std::chrono::seconds(10);
};

}  // namespace nudge::storage
