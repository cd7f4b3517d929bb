#include "storage/env.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>

#include "storage/detail/file_io.hpp"
#include "storage/detail/lmdb_meta.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/journal_table.hpp"

namespace nudge::storage {
namespace {

namespace fs = std::filesystem;

// "process" durability: MDB_WRITEMAP | MDB_NOSYNC. Commits write into the shared
// mapping instead of copying every dirty page through pwrite(); measured: the writer
// thread spent most of its time in the kernel's write path without it. The page cache
// holds the mapping, so a killed process loses nothing committed. With
// env_options::writable_map off, MDB_NOSYNC alone: LMDB copies each commit's pages with
// pwrite (no write faults after the kernel's writeback; more CPU per commit).
//
// "power" durability: neither. LMDB's own commit then writes the data pages with
// pwrite and syncs them, then writes the meta page through its O_DSYNC descriptor, in
// that order. Syncing after a MDB_NOSYNC commit instead (as this build did before)
// left the new meta page dirty in the page cache beside the data it points to, and the
// kernel's writeback may write it first (it sits at the front of the file): a power
// loss in that window could leave a meta page pointing at pages never written.
// MDB_WRITEMAP is left out here because every sync of the map write-protects the pages
// it wrote (a TLB shootdown on every core the process runs on), and LMDB reuses the
// same freed pages in the next commit, each taking a write fault again: measured
// (docs/BENCHMARKS.md, "Prefaulted map pages, and power durability without the writable map"), the writer spent
// a third of its time in the hypervisor's interrupt path and a tenth in TLB flushes,
// and `tests/bench/scenarios.sh 4` went from 17,800-19,700 to 24,200-26,000 msgs/s.
//
// The commit log ("power" durability with env_options::commit_log): LMDB is opened as
// in "process" durability, and each commit's puts and deletes are appended to the log
// and synced before commit() returns (storage/commit_log.hpp): one sequential write
// and fdatasync per commit instead of LMDB's scattered pages (a scattered page cost
// 0.16-0.42 ms to sync here, docs/BENCHMARKS.md, "Floors"). What makes it durable
// through a power loss:
//  - a checkpoint pins the newest transaction C with a read transaction (LMDB then
//    reuses none of the pages C's tree holds), starts a new log segment, syncs the data
//    file, and only then writes C's meta page into the checkpoint file; the previous
//    checkpoint's pin and log segments are released after that;
//  - LMDB's meta pages are not synced between checkpoints, so after a power loss the
//    newest of them may name a transaction whose pages never reached the disk. An open
//    with a checkpoint file therefore writes C's meta page back into both slots when they
//    name another transaction (detail/lmdb_meta.hpp): C's pages were synced and never
//    written since. Then it replays the log from C's segment on: whole-value puts and
//    deletes, idempotent over any state from C on, so a process killed (page cache
//    intact) recovers the same way;
//  - a record is acknowledged only after its fdatasync; one whose commit failed is
//    voided on disk (commit_log::rollback, then sync) before anything else is written.
// An open without commit_log replays and removes a log it finds (a dir that ran in
// "power" durability before).
constexpr unsigned env_flags_base = MDB_NOTLS | MDB_NORDAHEAD;
constexpr unsigned env_flags_process = MDB_WRITEMAP | MDB_NOSYNC;

/// The durability flags `o` asks for ("process" without the writable map: MDB_NOSYNC
/// alone, commits written with pwrite; env_options::writable_map).
unsigned flags_for(const env_options& o) noexcept {
  // The commit log's LMDB writes with pwrite: the checkpoints' syncs would
  // write-protect the writable map's pages every 100 ms, and the commits that write
  // them next take a fault each (measured: p99 at 10,000 msgs/s 92 ms against 27 with
  // checkpoints every 500 ms, docs/BENCHMARKS.md).
  if (o.commit_log)
    return MDB_NOSYNC;
  if (o.sync_each_commit)
    return 0;
  return o.writable_map ? env_flags_process : MDB_NOSYNC;
}

constexpr MDB_dbi max_dbs = 32;
constexpr unsigned max_readers = 512;
// Reset read handles kept for reuse; more than this many concurrent readers end
// their handles instead (each pooled handle keeps one of the 512 reader slots).
constexpr std::size_t read_pool_max = 32;

// Read transactions this thread holds (on any env). A thread that already holds one
// may open another even while a map growth waits, since the growth is waiting for
// that thread anyway: holding it back would deadlock.
thread_local int read_depth = 0;

std::error_code make_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::create_directories(dir, ec)) {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec)
      return errc::io_error;
  }
  if (ec || !fs::is_directory(dir, ec))
    return errc::io_error;
  return {};
}

std::uint64_t page_size() {
  long p = ::sysconf(_SC_PAGESIZE);
  return p > 0 ? static_cast<std::uint64_t>(p) : 4096;
}

}  // namespace

std::unique_ptr<env> env::open(const env_options& options, std::error_code& ec) {
  ec.clear();
  if (options.dir.empty()) {
    ec = errc::io_error;
    return nullptr;
  }
  if ((ec = make_dir(options.dir)))
    return nullptr;

  std::unique_ptr<env> e(new env(options));
  const std::uint64_t page = page_size();
  auto& o = e->options_;
  o.map_size_max = std::max(page, o.map_size_max / page * page);
  o.map_size_initial = std::min(o.map_size_max, (o.map_size_initial + page - 1) / page * page);
  o.map_size_initial = std::max(o.map_size_initial, page);

  if (o.preallocate_ahead > 0) {
    // The lock file is a writable map too (the reader table, 32 KiB for 512 readers):
    // its blocks are allocated once, past its end so that LMDB still sizes it. Only
    // before mdb_env_open: closing any descriptor of the file later would drop the
    // fcntl locks LMDB holds on it, and another process would reset the reader table.
    int lock_fd = ::open((o.dir / "lock.mdb").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd >= 0) {
      ::fallocate(lock_fd, FALLOC_FL_KEEP_SIZE, 0, 64 << 10);
      ::close(lock_fd);
    }
  }
  std::optional<commit_log::checkpoint> checkpoint;
  if (!o.secondary && (ec = e->roll_back_to_checkpoint(checkpoint)))
    return nullptr;
  int rc = mdb_env_create(&e->env_);
  if (rc == MDB_SUCCESS)
    rc = mdb_env_set_mapsize(e->env_, o.map_size_initial);
  if (rc == MDB_SUCCESS)
    rc = mdb_env_set_maxdbs(e->env_, max_dbs);
  if (rc == MDB_SUCCESS)
    rc = mdb_env_set_maxreaders(e->env_, max_readers);
  if (rc == MDB_SUCCESS)
    rc = mdb_env_open(e->env_, o.dir.c_str(), env_flags_base | flags_for(o), 0600);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return nullptr;  // ~env closes the handle, as mdb_env_open's contract asks
  }
  e->check_readers();

  MDB_envinfo info{};
  mdb_env_info(e->env_, &info);
  e->map_size_.store(info.me_mapsize, std::memory_order_relaxed);
  e->page_size_ = page;
  e->note_used();
  const bool have_fd = mdb_env_get_fd(e->env_, &e->data_fd_) == MDB_SUCCESS;
  e->preallocate_.store(o.preallocate_ahead > 0 && have_fd, std::memory_order_relaxed);
  if (e->preallocate_.load(std::memory_order_relaxed) && o.prefault && (flags_for(o) & MDB_WRITEMAP) != 0) {
    e->map_base_ = e->find_map_base();
    e->prefault_.store(e->map_base_ != nullptr, std::memory_order_relaxed);
  }
  e->next_housekeeping_ = std::chrono::steady_clock::now() + o.reader_check_interval;

  // The checkpoint's transaction stays intact while the tables open and the log
  // replays over it: a crash meanwhile rolls back to it again.
  const bool log_work = !o.secondary && (checkpoint || o.commit_log);
  MDB_txn* base_pin = nullptr;
  if (log_work && (rc = mdb_txn_begin(e->env_, nullptr, MDB_RDONLY, &base_pin)) != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return nullptr;
  }
  ec = e->open_tables();
  if (!ec && log_work)
    ec = e->start_log(checkpoint);
  if (base_pin != nullptr)
    mdb_txn_abort(base_pin);
  if (ec)
    return nullptr;
  return e;
}

std::error_code env::roll_back_to_checkpoint(std::optional<commit_log::checkpoint>& checkpoint) {
  std::error_code ec;
  checkpoint = commit_log::read_checkpoint(options_.dir / "log", ec);
  if (ec || !checkpoint)
    return ec;
  // A log replays only over the state it was logged against: without its data file it
  // would rebuild a fraction of the data as if it were all of it.
  int fd = ::open((options_.dir / "data.mdb").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? make_error_code(errc::corrupt) : make_error_code(errc::io_error);
  std::string page0, page1;
  ec = detail::read_meta_pages(fd, page0, page1);
  if (!ec) {
    const auto newest = detail::newest_meta(page0, page1);
    if (!newest || newest->txnid != checkpoint->txnid)
      ec = detail::restore_meta(fd, checkpoint->meta_page);
  }
  ::close(fd);
  return ec;
}

std::error_code env::start_log(const std::optional<commit_log::checkpoint>& checkpoint) {
  const auto dir = options_.dir / "log";
  std::error_code ec;
  auto log = commit_log::open(dir, options_.log_segment_bytes, ec);
  if (!log)
    return ec;
  if (checkpoint) {
    ec = log->replay(checkpoint->from_seq, [&](std::string_view payload, const commit_log::table_map& tables) {
      // The segment's dbi numbers, mapped to this open's by table name.
      std::array<MDB_dbi, 256> ours{};
      std::array<bool, 256> known{};
      for (const auto& [dbi, name] : tables) {
        auto it = std::find_if(log_tables_.begin(), log_tables_.end(), [&](const auto& t) { return t.second == name; });
        if (it == log_tables_.end() || dbi >= ours.size())
          return make_error_code(errc::corrupt);
        ours[dbi] = it->first;
        known[dbi] = true;
      }
      ++log_records_replayed_;
      bool parsed = true;
      auto cec = commit([&](write_txn& tx) {
        parsed = !commit_log::for_each_op(payload, [&](commit_log::op_kind kind, MDB_dbi dbi, std::string_view key,
                                                       std::string_view value) {
          if (!known[dbi])
            return false;
          if (kind == commit_log::op_kind::put)
            detail::put(tx, ours[dbi], key, value);
          else
            detail::del(tx, ours[dbi], key);
          return true;
        });
        if (!parsed)
          detail::fail(tx, MDB_CORRUPTED);
      });
      return parsed ? cec : make_error_code(errc::corrupt);
    });
    if (ec)
      return ec;
  }
  if (mdb_env_sync(env_, 1) != MDB_SUCCESS)
    return errc::io_error;
  // LMDB's meta pages must read as detail/lmdb_meta.hpp expects before a checkpoint
  // relies on them; if not, LMDB syncs each commit itself (correct, slower).
  bool layout_ok = false;
  {
    std::string page0, page1;
    MDB_envinfo info{};
    if (!detail::read_meta_pages(data_fd_, page0, page1) && mdb_env_info(env_, &info) == MDB_SUCCESS) {
      const auto newest = detail::newest_meta(page0, page1);
      layout_ok = newest && newest->txnid == info.me_last_txnid && newest->last_pgno == info.me_last_pgno;
    }
  }
  if (!options_.commit_log || !layout_ok) {
    if (options_.commit_log && mdb_env_set_flags(env_, MDB_NOSYNC, 0) != MDB_SUCCESS)
      return errc::io_error;
    // Everything the log held is in LMDB and synced.
    log.reset();
    std::error_code fec;
    fs::remove_all(dir, fec);
    return fec ? make_error_code(errc::io_error) : std::error_code{};
  }
  log_ = std::move(log);
  if ((ec = checkpoint_once())) {
    log_.reset();
    return ec;
  }
  (void)log_->prepare_spare();
  // The thread takes no signal: the process decides which of its threads waits for them
  // (app/serve.cpp blocks them only after the env is open).
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  checkpointer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "nudge-checkpt");
    run_checkpoints();
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return {};
}

std::error_code env::checkpoint_once() {
  std::lock_guard run(checkpoint_run_mtx_);
  commit_log::checkpoint c;
  MDB_txn* pin = nullptr;
  {
    // Between commits: the newest transaction, its meta page as LMDB wrote it, and a
    // segment of its own for every record after it.
    std::lock_guard lock(commit_mtx_);
    if (int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &pin); rc != MDB_SUCCESS)
      return detail::from_mdb(rc);
    c.txnid = mdb_txn_id(pin);
    std::string page0, page1;
    auto ec = detail::read_meta_pages(data_fd_, page0, page1);
    auto page = ec ? std::nullopt : detail::meta_page_of(page0, page1, c.txnid);
    if (!page) {
      mdb_txn_abort(pin);
      return ec ? ec : make_error_code(errc::corrupt);
    }
    c.meta_page = std::move(*page);
    c.from_seq = log_->rotate(log_tables_, ec);
    if (ec) {
      mdb_txn_abort(pin);
      return ec;
    }
    log_bytes_.store(0, std::memory_order_relaxed);
  }
  // C's pages (and whatever came after) reach the disk before the checkpoint names C.
  // In slices first, each written and waited for before the next: one fdatasync of
  // everything queues it all at once, and the log's appends wait behind it (measured:
  // p99 at 10,000 msgs/s 18.5 ms against 13.2 with 256 KiB slices, docs/BENCHMARKS.md).
  if (const auto step = static_cast<off_t>(options_.log_writeback_slice_bytes); step > 0) {
    const auto end = static_cast<off_t>(used_bytes_.load(std::memory_order_relaxed));
    for (off_t at = 0; at < end; at += step)
      ::sync_file_range(data_fd_, at, step,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
  }
  std::error_code ec = detail::data_sync(data_fd_) ? commit_log::write_checkpoint(options_.dir / "log", c)
                                                  : make_error_code(errc::io_error);
  if (ec) {
    mdb_txn_abort(pin);  // the previous checkpoint stays the one an open rolls back to
    return ec;
  }
  if (MDB_txn* previous = std::exchange(log_pin_, pin))
    mdb_txn_abort(previous);
  log_->recycle_below(c.from_seq);
  log_checkpoints_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void env::run_checkpoints() {
  auto last = std::chrono::steady_clock::now();
  std::unique_lock lock(checkpoint_mtx_);
  while (!checkpoint_stop_) {
    checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(20));
    if (checkpoint_stop_)
      break;
    const auto now = std::chrono::steady_clock::now();
    const std::uint64_t logged = log_bytes_.load(std::memory_order_relaxed);
    if (logged == 0 || (logged < options_.log_checkpoint_bytes && now - last < options_.log_checkpoint_interval))
      continue;
    lock.unlock();
    const auto ec = checkpoint_once();
    if (!ec)
      (void)log_->prepare_spare();
    lock.lock();
    if (ec) {
      log_checkpoint_failures_.fetch_add(1, std::memory_order_relaxed);
      checkpoint_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return checkpoint_stop_; });
    }
    last = now;
  }
}

std::error_code env::open_tables() {
  bool schema_ok = true;
  auto ec = commit([&](write_txn& tx) {
    schema_ok = true;
    const std::pair<const char*, MDB_dbi*> tables[] = {
        {"profiles", &profiles_}, {"decision_chunks", &decision_chunks_}, {"history_chunks", &history_chunks_},
        {"seen_chunks", &seen_chunks_}, {"journal_log", &journal_}, {"identities", &identities_},
        {"aliases", &aliases_},   {"dedupe", &dedupe_},   {"dedupe_by_time", &dedupe_by_time_},   {"meta", &meta_},
        {"timers", &timers_},     {"timer_owners", &timer_owners_},
        {"outbox", &outbox_},     {"outbox_failed", &outbox_failed_},
        {"members", &members_},
        {"audit", &audit_},       {"suppression", &suppression_},
        {"expiry", &expiry_},     {"expiry_owner", &expiry_owner_},
    };
    log_tables_.clear();
    for (const auto& [name, dbi] : tables) {
      if (int rc = mdb_dbi_open(tx.get(), name, MDB_CREATE, dbi); rc != MDB_SUCCESS)
        detail::fail(tx, rc);
      log_tables_.emplace_back(*dbi, name);
    }

    // The journal keyed by (profile, seq), before the append-keyed log: its entries
    // move to the log once (journal_table::migrate_keyed), and the table stays empty.
    MDB_dbi keyed_journal = 0;
    if (int rc = mdb_dbi_open(tx.get(), "journal", 0, &keyed_journal); rc == MDB_SUCCESS) {
      journal_table::migrate_keyed(tx, keyed_journal);
    } else if (rc != MDB_NOTFOUND) {
      detail::fail(tx, rc);
    }

    MDB_val key = detail::to_val("schema_version");
    MDB_val value{};
    int rc = mdb_get(tx.get(), meta_, &key, &value);
    const auto upgraded = [&] {
      const auto& old = schema_versions_upgraded;
      return std::find(std::begin(old), std::end(old), detail::to_view(value)) != std::end(old);
    };
    if (rc == MDB_NOTFOUND || (rc == MDB_SUCCESS && upgraded()))
      detail::put(tx, meta_, "schema_version", schema_version);  // new, or upgraded in place
    else if (rc != MDB_SUCCESS)
      detail::fail(tx, rc);
    else
      schema_ok = detail::to_view(value) == schema_version;
  });
  if (ec)
    return ec;
  return schema_ok ? std::error_code{} : make_error_code(errc::corrupt);
}

env::~env() {
  if (checkpointer_.joinable()) {
    {
      std::lock_guard lock(checkpoint_mtx_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_all();
    checkpointer_.join();
  }
  // A last checkpoint: the next open has nothing to replay (when it fails, it replays).
  if (log_ != nullptr)
    (void)checkpoint_once();
  if (log_pin_ != nullptr)
    mdb_txn_abort(log_pin_);
  for (MDB_txn* txn : read_pool_)
    mdb_txn_abort(txn);
  if (env_ != nullptr)
    mdb_env_close(env_);
}

void env::enter_reader() const {
  std::unique_lock lock(gate_mutex_);
  if (read_depth == 0)
    gate_cv_.wait(lock, [this] { return !resizing_; });
  ++readers_;
  ++read_depth;
}

void env::leave_reader(MDB_txn* txn) const noexcept {
  if (read_depth > 0)
    --read_depth;
  if (txn != nullptr)
    mdb_txn_reset(txn);
  bool pooled = false;
  bool wake = false;
  {
    std::lock_guard lock(gate_mutex_);
    if (txn != nullptr && read_pool_.size() < read_pool_max) {
      read_pool_.push_back(txn);  // capacity reserved in read(): cannot throw
      pooled = true;
    }
    --readers_;
    wake = resizing_ && readers_ == 0;
  }
  if (txn != nullptr && !pooled)
    mdb_txn_abort(txn);
  if (wake)
    gate_cv_.notify_all();
}

read_txn env::read() const {
  std::error_code ignored;
  return read(ignored);
}

read_txn env::read(std::error_code& ec) const {
  ec.clear();
  MDB_txn* txn = nullptr;
  enter_reader();
  {
    std::lock_guard lock(gate_mutex_);
    if (!read_pool_.empty()) {
      txn = read_pool_.back();
      read_pool_.pop_back();
    } else if (read_pool_.capacity() < read_pool_max) {
      read_pool_.reserve(read_pool_max);
    }
  }
  int rc = MDB_SUCCESS;
  if (txn != nullptr) {
    rc = mdb_txn_renew(txn);
    if (rc != MDB_SUCCESS) {
      mdb_txn_abort(txn);
      txn = nullptr;
    }
  }
  if (txn == nullptr)
    rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != MDB_SUCCESS) {
    leave_reader(nullptr);
    ec = detail::from_mdb(rc);
    return {};
  }
  return read_txn(this, txn);
}

std::error_code env::resize_map(std::uint64_t new_size) {
  std::unique_lock lock(gate_mutex_);
  resizing_ = true;
  gate_cv_.wait(lock, [this] { return readers_ == 0; });
  // The lock stays held: no reader can begin while the map moves.
  int rc = mdb_env_set_mapsize(env_, new_size);
  if (rc == MDB_SUCCESS) {
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    map_size_.store(info.me_mapsize, std::memory_order_relaxed);
    // A smaller map truncates the file (MDB_WRITEMAP): blocks past it are gone.
    if (allocated_bytes_.load(std::memory_order_relaxed) > info.me_mapsize)
      allocated_bytes_.store(info.me_mapsize, std::memory_order_relaxed);
    // The new map starts with no page mapped: prefaulting begins again at the used end.
    if (prefault_.load(std::memory_order_relaxed)) {
      map_base_ = find_map_base();
      prefaulted_bytes_.store(0, std::memory_order_relaxed);
      if (map_base_ == nullptr)
        prefault_.store(false, std::memory_order_relaxed);
    }
  }
  resizing_ = false;
  lock.unlock();
  gate_cv_.notify_all();
  // A failed remap leaves LMDB without a map: nothing more can be done with it.
  return rc == MDB_SUCCESS ? std::error_code{} : make_error_code(errc::io_error);
}

void env::note_used() noexcept {
  MDB_envinfo info{};
  if (mdb_env_info(env_, &info) == MDB_SUCCESS)
    used_bytes_.store((static_cast<std::uint64_t>(info.me_last_pgno) + 1) * page_size_,
                      std::memory_order_relaxed);
}

// With MDB_WRITEMAP a commit writes its new pages straight into the map; a page past
// what the file system has allocated is a hole, and a hole the disk cannot fill is a
// SIGBUS, not an error. So the blocks from the used end onwards are allocated before a
// commit may touch them: at least half of preallocate_ahead must be allocated, else the
// commit waits for a top-up to the full amount (reserve_space, on the writer thread).
// Without the writable map ("power" durability) a full disk fails LMDB's own write
// instead; the allocation is kept there too, so that a full disk is refused the same
// way, before anything is written.
//
// Commits should not meet that wait: an fallocate can take seconds when the file
// system first reads the block bitmaps of groups it has not used yet behind a
// writeback (measured: 2.0-2.4 s in ext4_wait_block_bitmap, and every commit waited,
// docs/BENCHMARKS.md, "Allocation ahead, off the commit path"). So the writer tops up
// earlier, once a quarter is used (top_up), without the commit baton: commits go on
// meanwhile below the allocated end, and the half left is their runway.
bool env::reserve_due() const noexcept {
  if (!preallocate_.load(std::memory_order_relaxed))
    return false;
  const std::uint64_t used = used_bytes_.load(std::memory_order_relaxed);
  return allocated_bytes_.load(std::memory_order_relaxed) < std::min(map_size(), used + options_.preallocate_ahead / 2);
}

bool env::top_up_due() const noexcept {
  if (!preallocate_.load(std::memory_order_relaxed) || top_up_failed_.load(std::memory_order_relaxed))
    return false;
  const std::uint64_t used = used_bytes_.load(std::memory_order_relaxed);
  const std::uint64_t left = options_.preallocate_ahead - options_.preallocate_ahead / 4;
  return allocated_bytes_.load(std::memory_order_relaxed) < std::min(map_size(), used + left);
}

std::error_code env::reserve_space() {
  if (!reserve_due())
    return {};
  if (allocate_ahead())
    return {};
  disk_full_refusals_.fetch_add(1, std::memory_order_relaxed);
  return errc::disk_full;
}

void env::top_up() {
  if (top_up_due() && !allocate_ahead())
    top_up_failed_.store(true, std::memory_order_relaxed);  // until a commit's own allocation succeeds
}

bool env::allocate_ahead() {
  std::lock_guard<std::mutex> guard(allocate_mtx_);
  const std::uint64_t map = map_size();
  const std::uint64_t used = used_bytes_.load(std::memory_order_relaxed);
  const std::uint64_t allocated = allocated_bytes_.load(std::memory_order_relaxed);
  const std::uint64_t target = std::min(map, used + options_.preallocate_ahead);
  if (target <= allocated)
    return true;
  int rc;
  do
    rc = ::fallocate(data_fd_, 0, static_cast<off_t>(allocated), static_cast<off_t>(target - allocated));
  while (rc != 0 && errno == EINTR);
  if (rc == 0) {
    allocated_bytes_.store(target, std::memory_order_relaxed);
    top_up_failed_.store(false, std::memory_order_relaxed);
    return true;
  }
  if (errno == EOPNOTSUPP || errno == ENOSYS) {
    preallocate_.store(false, std::memory_order_relaxed);  // a file system without fallocate: nothing to keep
    return true;
  }
  return false;
}

bool env::prefault_due() const noexcept {
  if (!prefault_.load(std::memory_order_relaxed))
    return false;
  const std::uint64_t from =
      std::max(prefaulted_bytes_.load(std::memory_order_relaxed), used_bytes_.load(std::memory_order_relaxed));
  return from < allocated_bytes_.load(std::memory_order_relaxed);
}

std::size_t env::prefault_some(std::size_t max_bytes) {
  if (!prefault_due() || max_bytes == 0)
    return 0;
  // As a reader: a map growth (the only writer of map_base_) waits until this is done.
  enter_reader();
  // From the used end (pages below it are already written), page-aligned, never past
  // the allocated blocks (a hole would be filled by the fault) or the map.
  const std::uint64_t used = used_bytes_.load(std::memory_order_relaxed);
  const std::uint64_t from = std::max(prefaulted_bytes_.load(std::memory_order_relaxed), used) / page_size_ * page_size_;
  const std::uint64_t end = std::min(allocated_bytes_.load(std::memory_order_relaxed), map_size());
  const std::uint64_t to = std::min<std::uint64_t>(end, from + max_bytes) / page_size_ * page_size_;
  std::size_t done = 0;
  if (map_base_ != nullptr && to > from) {
#ifdef MADV_POPULATE_WRITE
    const int advice = MADV_POPULATE_WRITE;
#else
    const int advice = 23;  // Linux 5.14; older headers lack the name
#endif
    int rc;
    do
      rc = ::madvise(map_base_ + from, to - from, advice);
    while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      prefaulted_bytes_.store(to, std::memory_order_relaxed);
      done = to - from;
    } else {
      prefault_.store(false, std::memory_order_relaxed);  // EINVAL before 5.14; nothing else to try
    }
  }
  leave_reader(nullptr);
  return done;
}

char* env::find_map_base() const {
  struct stat st{};
  if (data_fd_ < 0 || ::fstat(data_fd_, &st) != 0)
    return nullptr;
  std::FILE* f = std::fopen("/proc/self/maps", "re");
  if (f == nullptr)
    return nullptr;
  // "start-end perms offset major:minor inode path": the shared map at offset 0.
  char* base = nullptr;
  char line[4096];
  while (base == nullptr && std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long long start = 0, end = 0, offset = 0, inode = 0;
    unsigned major_no = 0, minor_no = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &offset, &major_no, &minor_no,
                    &inode) == 7 &&
        offset == 0 && perms[3] == 's' && inode == st.st_ino && major_no == major(st.st_dev) &&
        minor_no == minor(st.st_dev))
      base = reinterpret_cast<char*>(static_cast<std::uintptr_t>(start));
  }
  std::fclose(f);
  return base;
}

void env::housekeeping() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_housekeeping_)
    return;
  next_housekeeping_ = now + options_.reader_check_interval;
  check_readers();
  reserve_space();  // a failure is reported by the next commit, which tries again
}

std::size_t env::check_readers() {
  int dead = 0;
  if (mdb_reader_check(env_, &dead) != MDB_SUCCESS || dead <= 0)
    return 0;
  readers_cleared_.fetch_add(static_cast<std::uint64_t>(dead), std::memory_order_relaxed);
  return static_cast<std::size_t>(dead);
}

env_stats env::stats() const {
  env_stats s;
  s.map_size_bytes = map_size();
  s.map_used_bytes = used_bytes_.load(std::memory_order_relaxed);
  s.allocated_bytes = allocated_bytes_.load(std::memory_order_relaxed);
  s.prefaulted_bytes = prefault_.load(std::memory_order_relaxed) ? prefaulted_bytes_.load(std::memory_order_relaxed) : 0;
  s.readers_cleared = readers_cleared_.load(std::memory_order_relaxed);
  s.disk_full_refusals = disk_full_refusals_.load(std::memory_order_relaxed);
  s.log_checkpoints = log_checkpoints_.load(std::memory_order_relaxed);
  s.log_checkpoint_failures = log_checkpoint_failures_.load(std::memory_order_relaxed);
  s.log_bytes_pending = log_bytes_.load(std::memory_order_relaxed);
  s.log_records_replayed = log_records_replayed_;
  // mdb_reader_list prints a header line, then one line per held slot ("PID THREAD
  // TXNID"): count the lines that start with a pid.
  mdb_reader_list(
      env_,
      [](const char* line, void* ctx) -> int {
        while (*line == ' ')
          ++line;
        if (std::isdigit(static_cast<unsigned char>(*line)))
          ++*static_cast<std::uint64_t*>(ctx);
        return 0;
      },
      &s.readers_in_use);
  return s;
}

std::uint64_t env::reclaim_reserve() const noexcept {
  return std::clamp<std::uint64_t>(options_.map_size_max / 16, 4ull << 20, 1ull << 30);
}

std::error_code env::commit(const std::function<void(write_txn&)>& apply, commit_mode mode) {
  if (log_ == nullptr)
    return commit_locked(apply, mode);
  std::lock_guard lock(commit_mtx_);
  return commit_locked(apply, mode);
}

std::error_code env::commit_locked(const std::function<void(write_txn&)>& apply, commit_mode mode) {
  const std::uint64_t limit =
      options_.map_size_max + (mode == commit_mode::normal ? 0 : reclaim_reserve());
  for (;;) {
    // Before the transaction: nothing is written when the disk cannot hold it.
    if (auto ec = reserve_space())
      return ec;
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
      // Another process grew the map: adopt its size and begin again.
      if (auto ec = resize_map(0))
        return ec;
      continue;
    }
    if (rc != MDB_SUCCESS)
      return detail::from_mdb(rc);

    write_txn tx(this, txn, value_buffer_, key_buffer_);
    if (log_ != nullptr) {
      log_ops_.clear();
      tx.log_ = &log_ops_;
    }
    bool threw = false;
    try {
      apply(tx);
    } catch (const detail::txn_aborted&) {
    } catch (...) {
      threw = true;
    }
    if (tx.failed() || threw) {
      mdb_txn_abort(txn);
      rc = tx.mdb_rc_;
      if (rc == 0)
        return errc::txn_failed;
    } else {
      bool logged = false;
      if (log_ != nullptr && !log_ops_.empty()) {
        // Durable in the log first; LMDB's commit then only reaches the page cache.
        if (auto lec = log_->append_sync(log_ops_)) {
          mdb_txn_abort(txn);
          log_->rollback();
          return lec;
        }
        logged = true;
        log_bytes_.fetch_add(log_ops_.size(), std::memory_order_relaxed);
      }
      rc = mdb_txn_commit(txn);  // frees the txn, also on failure
      if (rc != MDB_SUCCESS && logged) {
        log_->rollback();
        (void)log_->sync();  // else the next sync() voids it (the journal's sticky path)
      }
    }

    if (rc == MDB_MAP_FULL) {
      const std::uint64_t current = map_size();
      if (current >= limit)
        return errc::map_full;
      if (auto ec = resize_map(std::min(current * 2, limit)))
        return ec;
      continue;  // run `apply` again from scratch in the larger map
    }
    if (rc != MDB_SUCCESS)
      return detail::from_mdb(rc);
    note_used();
    if (mode == commit_mode::reclaim && map_size() > options_.map_size_max) {
      // The pages this commit freed are reusable only from the second transaction
      // after it (LMDB keeps the previous snapshot intact), and a full map lets no
      // ordinary one through: one more small commit, still in the reserve, makes them
      // reusable. Then the map goes back to map_size_max, or to the used end when
      // that is further (LMDB never maps less than its used pages).
      if (auto ec = commit_locked([this](write_txn& tx) { detail::put(tx, meta_, "storage.reclaimed", "1"); },
                                  commit_mode::reclaim_step))
        return ec;
      if (auto ec = resize_map(std::max(options_.map_size_max, used_bytes_.load(std::memory_order_relaxed))))
        return ec;
    }
    return {};  // sync_each_commit: mdb_txn_commit synced (a failed sync returned above)
  }
}

std::error_code env::sync() {
  if (log_ != nullptr) {
    std::lock_guard lock(commit_mtx_);
    return log_->sync();
  }
  if (int rc = mdb_env_sync(env_, 1); rc != MDB_SUCCESS)
    return errc::io_error;
  return {};
}

std::error_code env::copy_to(const fs::path& dir) const {
  if (auto ec = make_dir(dir))
    return ec;
  enter_reader();
  int rc = mdb_env_copy2(env_, dir.c_str(), MDB_CP_COMPACT);
  leave_reader(nullptr);
  return rc == MDB_SUCCESS ? std::error_code{} : make_error_code(errc::io_error);
}

namespace {

/// Rewrites every named table of the environment in `from` into a new one in `to`.
std::error_code rewrite_env(const fs::path& from, const fs::path& to) {
  struct env_handle {
    MDB_env* e = nullptr;
    ~env_handle() {
      if (e)
        mdb_env_close(e);
    }
  } src, dst;
  std::error_code fec;
  const auto size = fs::file_size(from / "data.mdb", fec);
  if (fec)
    return errc::io_error;
  const std::uint64_t page = page_size();
  const std::uint64_t map = ((size * 2 + (64u << 20)) + page - 1) / page * page;
  int rc = mdb_env_create(&src.e);
  if (rc == MDB_SUCCESS) rc = mdb_env_set_maxdbs(src.e, max_dbs);
  if (rc == MDB_SUCCESS) rc = mdb_env_set_mapsize(src.e, std::max<std::uint64_t>(size, page));
  if (rc == MDB_SUCCESS) rc = mdb_env_open(src.e, from.c_str(), MDB_RDONLY | MDB_NOLOCK, 0600);
  if (rc == MDB_SUCCESS) rc = mdb_env_create(&dst.e);
  if (rc == MDB_SUCCESS) rc = mdb_env_set_maxdbs(dst.e, max_dbs);
  if (rc == MDB_SUCCESS) rc = mdb_env_set_mapsize(dst.e, map);
  if (rc == MDB_SUCCESS) rc = mdb_env_open(dst.e, to.c_str(), MDB_NOSYNC, 0600);
  if (rc != MDB_SUCCESS)
    return detail::from_mdb(rc);

  MDB_txn* rtxn = nullptr;
  if ((rc = mdb_txn_begin(src.e, nullptr, MDB_RDONLY, &rtxn)) != MDB_SUCCESS)
    return detail::from_mdb(rc);
  struct txn_guard {
    MDB_txn* t;
    ~txn_guard() { mdb_txn_abort(t); }
  } read_guard{rtxn};
  // The main database lists the named tables.
  std::vector<std::string> names;
  {
    MDB_dbi main_dbi = 0;
    if ((rc = mdb_dbi_open(rtxn, nullptr, 0, &main_dbi)) != MDB_SUCCESS)
      return detail::from_mdb(rc);
    detail::cursor cur(rtxn, main_dbi, rc);
    if (rc != MDB_SUCCESS)
      return detail::from_mdb(rc);
    MDB_val k{}, v{};
    for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT))
      names.emplace_back(detail::to_view(k));
  }
  constexpr std::size_t per_txn = 10000;
  for (const auto& name : names) {
    MDB_dbi sdbi = 0;
    if ((rc = mdb_dbi_open(rtxn, name.c_str(), 0, &sdbi)) != MDB_SUCCESS)
      return detail::from_mdb(rc);
    detail::cursor cur(rtxn, sdbi, rc);
    if (rc != MDB_SUCCESS)
      return detail::from_mdb(rc);
    MDB_val k{}, v{};
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
    bool first = true;
    while (first || rc == MDB_SUCCESS) {
      first = false;
      MDB_txn* wtxn = nullptr;
      int wrc = mdb_txn_begin(dst.e, nullptr, 0, &wtxn);
      MDB_dbi ddbi = 0;
      if (wrc == MDB_SUCCESS)
        wrc = mdb_dbi_open(wtxn, name.c_str(), MDB_CREATE, &ddbi);
      for (std::size_t n = 0; wrc == MDB_SUCCESS && rc == MDB_SUCCESS && n < per_txn; ++n) {
        wrc = mdb_put(wtxn, ddbi, &k, &v, MDB_APPEND);
        rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
      }
      if (wrc == MDB_SUCCESS)
        wrc = mdb_txn_commit(wtxn);
      else if (wtxn)
        mdb_txn_abort(wtxn);
      if (wrc != MDB_SUCCESS)
        return detail::from_mdb(wrc);
    }
    if (rc != MDB_NOTFOUND)
      return detail::from_mdb(rc);
  }
  if ((rc = mdb_env_sync(dst.e, 1)) != MDB_SUCCESS)
    return errc::io_error;
  return {};
}

}  // namespace

std::error_code env::scrubbed_copy_to(const fs::path& dir) const {
  if (auto ec = make_dir(dir))
    return ec;
  std::error_code fec;
  if (fs::exists(dir / "data.mdb", fec))
    return errc::io_error;
  const auto tmp = dir / ".compact";
  fs::remove_all(tmp, fec);
  auto ec = copy_to(tmp);
  if (!ec)
    ec = rewrite_env(tmp, dir);
  fs::remove_all(tmp, fec);
  if (ec) {
    fs::remove(dir / "data.mdb", fec);
    fs::remove(dir / "lock.mdb", fec);
  }
  return ec;
}

std::uint64_t env::entries(MDB_dbi dbi) const {
  read_txn tx = read();
  if (!tx)
    return 0;
  MDB_stat st{};
  if (mdb_stat(tx.get(), dbi, &st) != MDB_SUCCESS)
    return 0;
  return st.ms_entries;
}

}  // namespace nudge::storage
