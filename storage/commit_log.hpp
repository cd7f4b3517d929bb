// The commit log of "power" durability: each commit's puts and deletes, appended to a
// segment file and synced before the commit's replies leave, so that LMDB itself need
// not sync each commit (env.cpp says how the two make one durable state).
//
// Files, in env_options::dir / "log":
//   seg-N.log     segments of env_options::log_segment_bytes, allocated once and reused:
//                 a header page (magic, the segment's sequence number, the table names
//                 of the dbi numbers its records use), then records:
//                 [magic u32][payload length u32][sequence u64][crc32c u32][0 u32] payload
//                 A record counts only with its segment's sequence number and a matching
//                 checksum, so a torn append, or a record left from the file's earlier
//                 use, ends the segment.
//   checkpoint    the state the log starts from: LMDB's meta page of a transaction whose
//                 pages were all synced, and the first segment sequence holding records
//                 after it (written to a temporary file, synced, renamed).
//
// A payload is a list of operations: [kind u8][dbi u8][key length u16][value length u32]
// key value, with kind 1 = put, 2 = delete (value length 0). Replaying them in order
// over any state at or before the one they were logged against yields the logged state:
// puts and deletes of whole values are idempotent.
//
// Threads: append(), sync(), rollback() and rotate() by the one committing thread at a
// time (env holds its commit lock); recycle_below(), spares() and the checkpoint file
// functions by the checkpointing thread; the two meet only under the segment lock.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace nudge::storage {

class commit_log {
 public:
  enum class op_kind : std::uint8_t { put = 1, del = 2 };

  /// The dbi numbers a segment's records use, with their table names.
  using table_map = std::vector<std::pair<MDB_dbi, std::string>>;

  /// What a checkpoint file holds.
  struct checkpoint {
    std::uint64_t txnid = 0;      ///< LMDB's transaction, synced whole
    std::uint64_t from_seq = 0;   ///< records after it are in segments from this one on
    std::string meta_page;        ///< LMDB's meta page of that transaction, as on disk
  };

  /// Opens (creating) `dir`, reads every segment's header; io_error on failure. The
  /// log appends nothing until rotate() starts a segment.
  static std::unique_ptr<commit_log> open(const std::filesystem::path& dir, std::uint64_t segment_bytes,
                                          std::error_code& ec);
  ~commit_log();
  commit_log(const commit_log&) = delete;
  commit_log& operator=(const commit_log&) = delete;

  /// Appends one operation to `out` (a commit's payload being built).
  static void add_put(std::string& out, MDB_dbi dbi, std::string_view key, std::string_view value);
  static void add_del(std::string& out, MDB_dbi dbi, std::string_view key);

  /// Calls `op` for each operation of `payload`, in order; corrupt when the payload does
  /// not parse (nothing after the bad operation is called) or `op` returns false.
  static std::error_code for_each_op(
      std::string_view payload,
      const std::function<bool(op_kind, MDB_dbi, std::string_view key, std::string_view value)>& op);

  /// Starts the next segment (sequence one above any seen) for records from now on,
  /// with `tables` in its header; returns its sequence number, 0 on failure (`ec`).
  std::uint64_t rotate(const table_map& tables, std::error_code& ec);

  /// Writes `payload` as one record at the end of the current segment (after a
  /// rotate() when it does not fit) and syncs it; io_error (or disk_full on ENOSPC) on
  /// failure, after which the record must be rolled back.
  std::error_code append_sync(std::string_view payload);

  /// The record last appended is void (its commit failed): the next record takes its
  /// place, and until one has, sync() zeroes its header on disk first.
  void rollback() noexcept;

  /// Makes every appended record durable and every rolled-back one void on disk.
  std::error_code sync();

  /// Segments whose sequence is below `seq` become spares for later rotations.
  void recycle_below(std::uint64_t seq);

  /// Makes sure a spare segment is allocated, so that a rotation does not create one
  /// while a commit waits. io_error when the file system refuses.
  std::error_code prepare_spare();

  /// The records of segments from `from_seq` on, in order, until the first segment that
  /// ends in a torn or stale record (none after it is read). `apply` gets each record's
  /// payload and the segment's table map; its error stops the replay.
  std::error_code replay(std::uint64_t from_seq,
                         const std::function<std::error_code(std::string_view, const table_map&)>& apply) const;

  std::uint64_t current_seq() const noexcept { return current_ ? current_->seq : 0; }
  /// Bytes appended since the last rotate(). Committing thread.
  std::uint64_t bytes_since_rotate() const noexcept { return appended_since_rotate_; }

  /// The checkpoint file of `dir`, nullopt when absent; corrupt when unreadable.
  static std::optional<checkpoint> read_checkpoint(const std::filesystem::path& dir, std::error_code& ec);
  /// Replaces the checkpoint file durably (temporary file, fdatasync, rename, directory
  /// fsync).
  static std::error_code write_checkpoint(const std::filesystem::path& dir, const checkpoint& c);

 private:
  struct segment {
    std::filesystem::path path;
    int fd = -1;
    std::uint64_t seq = 0;  ///< 0: a spare
    table_map tables;
  };

  commit_log(std::filesystem::path dir, std::uint64_t segment_bytes)
      : dir_(std::move(dir)), segment_bytes_(segment_bytes) {}
  std::error_code create_segment(std::unique_ptr<segment>& out);

  std::filesystem::path dir_;
  std::uint64_t segment_bytes_;
  std::uint64_t next_file_ = 0;
  std::uint64_t max_seq_ = 0;
  mutable std::mutex mtx_;  // the lists below
  std::vector<std::unique_ptr<segment>> sealed_;  ///< full or rotated away, by sequence
  std::vector<std::unique_ptr<segment>> spares_;
  // The committing thread's.
  std::unique_ptr<segment> current_;
  int unsynced_fd_ = -1;  ///< a segment rotated away in the middle of a sync cycle
  std::uint64_t offset_ = 0;  ///< the end of the current segment's records
  std::uint64_t last_at_ = 0;  ///< where the record last appended begins
  std::uint64_t appended_since_rotate_ = 0;
  std::optional<std::uint64_t> void_at_;  ///< a rolled-back record's offset, still on disk
  std::string header_;  ///< scratch for a record header
};

}  // namespace nudge::storage
