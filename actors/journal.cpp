#include "actors/journal.hpp"

#include "actors/wire.hpp"
#include "storage/env.hpp"
#include "storage/errc.hpp"
#include "storage/alias_table.hpp"
#include "storage/identity_table.hpp"
#include "storage/audit_table.hpp"
#include "storage/expiry_table.hpp"
#include "storage/meta_table.hpp"
#include "storage/outbox_table.hpp"
#include "storage/timer_table.hpp"
#include "storage/journal_table.hpp"
#include "storage/profile_table.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pthread.h>

namespace nudge::actors {
namespace {
/// Swaps two strings for as long as it lives: a loan without a copy.
class lent {
public:
  lent(std::string& borrower, std::string& owner) noexcept : a_(borrower), b_(owner) { a_.swap(b_); }
  ~lent() { a_.swap(b_); }
  lent(const lent&) = delete;
  lent& operator=(const lent&) = delete;

private:
  std::string& a_;
  std::string& b_;
};

// The writer maps this much of the preallocated map ahead at a time when idle
// (storage::env::prefault_some): 16 pages, some 60 µs here. The madvise holds the
// process's map lock for reading that long, and an mprotect of the I/O thread's
// malloc arena (each page its heap grows by) waits for it: slices of 256 pages
// held that thread up to 2.7 ms at a time (docs/BENCHMARKS.md, "Pauses of the machine,
// and the map lock").
constexpr std::size_t prefault_slice = 64 << 10;
}  // namespace

journal::journal(storage::env& env, journal_options options)
  : env_(env), options_(options), combine_(!env.commits_sync()) {
  start_error_ = build_index();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "nudge-writer");
    run();
  });
}

std::error_code journal::build_index() {
  std::error_code ec;
  const auto started = std::chrono::steady_clock::now();
  auto txn = env_.read();
  // Every entry's header, in position order. The profile ids point into the map,
  // which the read transaction keeps as it is: no id is copied, and no map of them
  // grows entry by entry (docs/BENCHMARKS.md, "A start after a crash, indexed in
  // sorted runs").
  struct header {
    std::string_view profile;
    std::size_t hash;  // of profile: the sort below reads ids only where hashes tie
    std::uint64_t position;
    std::uint64_t seq;
  };
  std::vector<header> entries;
  storage::journal_table::scan(txn, [&](const storage::journal_table::entry_header& h) {
    entries.push_back({h.profile_id, std::hash<std::string_view>{}(h.profile_id), h.position, h.seq});
    return true;
  }, ec);
  if (ec)
    return ec;
  const std::uint64_t first = entries.empty() ? 0 : entries.front().position;
  const std::uint64_t last = entries.empty() ? 0 : entries.back().position;
  next_position_ = last + 1;
  dropped_below_ = first == 0 ? next_position_ : first;
  const auto scanned = std::chrono::steady_clock::now();
  // Grouped by profile, each profile's entries in position order. Sorted by the id's
  // hash first: ids compared byte by byte made the sort the build's largest part.
  std::sort(entries.begin(), entries.end(), [](const header& a, const header& b) {
    if (a.hash != b.hash)
      return a.hash < b.hash;
    const int c = a.profile.compare(b.profile);
    return c != 0 ? c < 0 : a.position < b.position;
  });
  struct run {  // one profile's entries, [from, to)
    std::size_t from;
    std::size_t to;
  };
  std::vector<run> runs;
  for (std::size_t i = 0; i < entries.size();) {
    std::size_t j = i + 1;
    while (j < entries.size() && entries[j].hash == entries[i].hash && entries[j].profile == entries[i].profile)
      ++j;
    runs.push_back({i, j});
    i = j;
  }
  // The profiles in key order: their snapshot lookups then walk the profiles table's
  // leaves in turn instead of faulting in a page of the map at random for each.
  std::sort(runs.begin(), runs.end(),
            [&](const run& a, const run& b) { return entries[a.from].profile < entries[b.from].profile; });
  const auto sorted = std::chrono::steady_clock::now();
  // Live: the entries above their profile's snapshot. A profile's first record
  // carries its snapshot, so entries without one are of a profile merged away or
  // erased: dead.
  std::vector<std::uint64_t> live;
  for (const auto& r : runs) {
    const std::string_view profile = entries[r.from].profile;
    const auto snap_seq = storage::profile_table::stored_seq(txn, profile, ec);
    if (ec) {
      // Its activation reports the same error for it alone (as before this index):
      // keep its entries rather than refuse to start.
      spdlog::error("journal: the snapshot of profile {} is unreadable ({}); its {} entries stay", profile,
                    ec.message(), r.to - r.from);
      ec.clear();
    } else if (!snap_seq) {
      continue;
    }
    live.clear();
    for (std::size_t k = r.from; k < r.to; ++k)
      if (!snap_seq || entries[k].seq > *snap_seq)
        live.push_back(entries[k].position);
    if (!live.empty())
      index_.appended(std::string(profile), live);
  }
  const auto done = std::chrono::steady_clock::now();
  const auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  if (!entries.empty())
    spdlog::info("journal: {} entries from position {}, {} of them live for {} profiles (indexed in {} ms: scan {}, "
                 "sort {}, snapshots and index {})",
                 entries.size(), first, index_.live_entries(), index_.live_profiles(), ms(done - started),
                 ms(scanned - started), ms(sorted - scanned), ms(done - sorted));
  return {};
}

void journal::drop_dead_entries() {
  if (sticky_)
    return;
  constexpr std::size_t slice = 100000;  // deletions per commit
  const std::uint64_t low = index_.low_water(next_position_);
  if (low > dropped_below_) {
    for (std::size_t dropped = slice; dropped == slice;) {
      if (env_.commit([&](storage::write_txn& txn) { dropped = storage::journal_table::drop_before(txn, low, slice); }))
        return;  // left for the next start's commits
    }
    dropped_below_ = low;
  }
  // Then the dead entries above the oldest live one: a start reads every stored entry
  // and looks up the snapshot of each one's profile, so a few profiles that stayed
  // live (those that did not passivate in time) would keep the entries of every
  // profile snapshotted since for the next start to read (380,965 of them for 7,782
  // live over 1,000,000 profiles: docs/BENCHMARKS.md, "A clean stop leaves only live
  // entries").
  const auto live = index_.all_positions();
  if (next_position_ - low <= live.size())
    return;  // none dead above it
  const auto started = std::chrono::steady_clock::now();
  std::size_t total = 0;
  for (std::uint64_t from = low, dropped = slice; dropped == slice;) {
    std::uint64_t resume = from;
    if (env_.commit([&](storage::write_txn& txn) {
          dropped = storage::journal_table::drop_except(txn, resume, next_position_, live, slice);
        }))
      return;
    from = resume;
    total += dropped;
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  if (total > 0)
    spdlog::info("journal: dropped {} dead entries above the oldest live one in {} ms, {} live entries stay", total,
                 took.count(), live.size());
}

void journal::ask_for_checkpoints(std::size_t appended) {
  const std::uint64_t span = options_.checkpoint_entries;
  if (!checkpoint_ || span == 0 || checkpoints_stopped_.load(std::memory_order_acquire))
    return;
  const std::uint64_t low = index_.low_water(next_position_);
  const std::uint64_t live_span = next_position_ - low;
  const std::uint64_t pace_from = span - span / 4;
  constexpr std::size_t max_per_commit = 256;
  std::size_t max = 0;
  std::uint64_t before = next_position_;
  if (live_span > pace_from) {
    // Asking only once the span passes the bound asked every profile with an old entry
    // at once (with 10,000 active profiles: 10,000 snapshots within a few seconds, and
    // the stream's p99 rose tenfold while they were written; docs/BENCHMARKS.md). From
    // three quarters of the bound on, commits ask in proportion to the records they
    // append, more the nearer the span is to the bound: none at three quarters, as many
    // as they append at the bound (fractions carry over to the next commit). Snapshots
    // then come spread over the stream, as fast as the span needs. Past the bound, up to
    // 256 per commit.
    max = max_per_commit;
    if (live_span <= span) {
      const std::uint64_t zone = std::max<std::uint64_t>(1, span - pace_from);
      ask_credit_ += appended * (live_span - pace_from);
      max = static_cast<std::size_t>(std::min<std::uint64_t>(max_per_commit, ask_credit_ / zone));
      ask_credit_ = max < max_per_commit ? ask_credit_ - max * zone : 0;
    }
    // The oldest live entries, up to a quarter of the span ahead of the low water mark.
    before = low + span / 4 + 1;
  }
  // The bound on profiles with live entries (journal_options): past it, a commit asks
  // as many of the oldest as it appended records (each adds at most one live
  // profile), up to 256.
  const std::uint64_t profile_bound = options_.checkpoint_profiles;
  if (const std::uint64_t live_profiles = index_.live_profiles();
      max == 0 && profile_bound != 0 && live_profiles > profile_bound) {
    max = static_cast<std::size_t>(std::min<std::uint64_t>({max_per_commit, appended, live_profiles - profile_bound}));
    before = next_position_;
  }
  if (max == 0)
    return;
  // A profile asked once is asked again only after another half span.
  auto ids = index_.laggards(before, next_position_, next_position_ > span / 2 ? next_position_ - span / 2 : 1, max);
  if (ids.empty())
    return;
  checkpoints_asked_.fetch_add(ids.size(), std::memory_order_relaxed);
  checkpoint_(std::move(ids));
}

journal::~journal() {
  stop();
}

void journal::submit(write_record&& rec) {
  bool wake;
  {
    std::lock_guard<std::mutex> guard(mtx_);
    // The writer waits only while nothing is pending and no one commits: a non-empty
    // queue was already signalled, and a baton holder takes (or hands on) what comes
    // meanwhile, so under load most submits skip the futex wake.
    wake = pending_.empty() && !committing_;
    pending_.push_back(std::move(rec));
  }
  if (wake)
    cv_.notify_one();
}

namespace {
thread_local bool deferring_here = false;
}  // namespace

void journal::defer_here(bool on) noexcept {
  deferring_here = on;
}

void journal::submit_here(write_record&& rec) {
  std::unique_lock<std::mutex> lock(mtx_);
  const bool wake = pending_.empty() && !committing_;  // as in submit()
  pending_.push_back(std::move(rec));
  if (deferring_here && combine_)
    return;  // flush_here() commits it, or whoever holds the baton meanwhile
  combine(lock, wake);
}

void journal::flush_here(bool to_writer) {
  std::unique_lock<std::mutex> lock(mtx_);
  if (pending_.empty())
    return;
  if (to_writer) {
    const bool wake = !committing_;
    lock.unlock();
    if (wake)
      cv_.notify_one();
    return;
  }
  combine(lock, !committing_);
}

void journal::combine(std::unique_lock<std::mutex>& lock, bool wake) {
  // The caller commits only what costs no wait on the disk: not in "power" durability
  // (a sync), not while a failure is sticky (a full sync), not when the file needs
  // blocks first (a fallocate), not an erasure (a scan of the journal). Those stay
  // with the writer thread, as does a batch that arrives while this one commits, so
  // that an actor's thread is not kept by others' records.
  if (combine_ && !committing_ && !stopping_ && !sticky_ && !env_.reserve_due() &&
      std::none_of(pending_.begin(), pending_.end(), [](const write_record& r) { return r.erase != nullptr; })) {
    committing_ = true;
    const bool deferring = deferring_here;
    deferring_here = false;  // what on_done submits commits with the next batch
    commit_pending(lock);
    deferring_here = deferring;
    committing_ = false;
    // The writer also wakes to allocate ahead (env::top_up) while this thread goes on.
    const bool more = !pending_.empty() || stopping_ || env_.top_up_due();
    lock.unlock();
    if (more)
      cv_.notify_one();
    return;
  }
  lock.unlock();
  if (wake)
    cv_.notify_one();
}

void journal::commit_pending(std::unique_lock<std::mutex>& lock) {
  batch_.swap(pending_);
  lock.unlock();
  commit_batch(batch_);
  batch_.clear();
  lock.lock();
}

void journal::drain(std::unique_lock<std::mutex>& lock) {
  while (!pending_.empty())
    commit_pending(lock);
}

void journal::stop() {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    if (stopping_ && !thread_.joinable())
      return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

journal_stats journal::stats() const {
  journal_stats s;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.records = records_.load(std::memory_order_relaxed);
  s.failed_records = failed_.load(std::memory_order_relaxed);
  s.checkpoints_asked = checkpoints_asked_.load(std::memory_order_relaxed);
  s.live_entries = index_.live_entries();
  s.live_profiles = index_.live_profiles();
  std::lock_guard<std::mutex> guard(mtx_);
  s.backlog = pending_.size();
  return s;
}

void journal::run() {
  std::unique_lock<std::mutex> lock(mtx_);
  for (;;) {
    const bool woken = cv_.wait_for(lock, env_.options().reader_check_interval, [this] {
      return (!committing_ && (stopping_ || !pending_.empty())) || (!stopping_ && env_.top_up_due());
    });
    // While a submit_here caller holds the baton it drains, taking whatever comes
    // meanwhile; this thread only allocates ahead of it. Woken for that alone, it
    // leaves the baton free too.
    if (!committing_ && (stopping_ || !pending_.empty() || !woken)) {
      committing_ = true;
      drain(lock);
      const bool done = stopping_;
      lock.unlock();
      if (!done)
        env_.housekeeping();  // stale reader slots, preallocation; a clock read when not due
      else
        drop_dead_entries();  // a clean stop leaves only live entries for the next start
      lock.lock();
      committing_ = false;
      if (done)
        return;
    }
    // Allocate ahead of the used end without the baton, so that commits on the I/O
    // threads go on meanwhile (an fallocate may wait seconds on the disk, see
    // storage::env::top_up); a commit waits for the allocation only when half of it
    // is used.
    if (!stopping_ && env_.top_up_due()) {
      lock.unlock();
      env_.top_up();
      lock.lock();
    }
    // Idle: map the preallocated pages ahead of the used end, a slice at a time, so
    // that commits (on the I/O threads as often as here) do not fault on them. Work
    // that arrives meanwhile waits for one slice at most.
    while (pending_.empty() && !stopping_ && env_.prefault_due()) {
      lock.unlock();
      const bool progressed = env_.prefault_some(prefault_slice) > 0;
      lock.lock();
      if (!progressed)
        break;
    }
  }
}

void journal::commit_batch(std::vector<write_record>& batch) {
  if (std::all_of(batch.begin(), batch.end(), [](const write_record& r) { return r.marker; })) {
    for (auto& rec : batch)
      if (rec.on_done)
        rec.on_done(true);
    return;
  }
  bool gc = ++commits_since_gc_ >= 1000;
  if (gc)
    commits_since_gc_ = 0;
  auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  // A failed commit or sync is sticky (like LevelDB's bg_error_): what it wrote may or
  // may not be on disk, so nothing more is written or acknowledged until a sync of the
  // whole environment succeeds. A full map or disk is not sticky: nothing was written.
  std::error_code ec;
  if (sticky_) {
    if (env_.sync()) {
      ec = sticky_;
    } else {
      spdlog::warn("journal: storage syncs again, writes resume (after: {})", sticky_.message());
      sticky_.clear();
    }
  }
  // An erasure frees space: it may use the map's reclaim reserve (storage/env.hpp).
  const bool reclaims = std::any_of(batch.begin(), batch.end(), [](const write_record& r) { return r.erase != nullptr; });
  // Meta entries are whole values (counters, holdout stats) that every decision
  // rewrites: a batch puts each key once, with the newest value: the source's (taken
  // now, so at least as new as any record's), else what a failed commit before could
  // not write, else the last record's.
  thread_local std::vector<std::pair<std::string, std::string>> taken;
  thread_local std::vector<const std::pair<std::string, std::string>*> meta;
  taken.clear();
  meta.clear();
  if (meta_source_)
    meta_source_(taken);
  const auto put_once = [](const std::pair<std::string, std::string>& kv) {
    if (std::none_of(meta.begin(), meta.end(), [&](const auto* m) { return m->first == kv.first; }))
      meta.push_back(&kv);
  };
  for (const auto& kv : taken)
    put_once(kv);
  for (const auto& kv : meta_unwritten_)
    put_once(kv);
  for (auto rec = batch.rbegin(); rec != batch.rend(); ++rec)
    for (auto kv = rec->meta.rbegin(); kv != rec->meta.rend(); ++kv)
      put_once(*kv);
  // Journal positions: this batch's entries append from next_position_; entries
  // below the oldest live one leave, a bounded slice per commit.
  std::uint64_t position = next_position_;
  const std::uint64_t low_water = index_.low_water(next_position_);
  std::uint64_t dropped_below = dropped_below_;
  if (!ec) ec = env_.commit([&](storage::write_txn& txn) {
    position = next_position_;
    dropped_below = dropped_below_;
    if (low_water > dropped_below) {
      // A few times what this batch appends: the drops keep pace with the appends,
      // and no commit (on an actor's thread, the I/O thread's among them) carries
      // thousands of deletions that every reply behind it waits out.
      const std::size_t slice = std::max<std::size_t>(256, 4 * batch.size());
      if (storage::journal_table::drop_before(txn, low_water, slice) < slice)
        dropped_below = low_water;
    }
    // Replies kept by time go in key order (time, then hash): each then goes at the end
    // of the table, where LMDB starts a new leaf when the last is full; in arrival
    // order the keys of one millisecond interleave, and each split leaves a leaf half
    // empty for good (a closed loop as scenario 1's, 20 s: 591 B of table per entry of
    // ~375 B in arrival order, 504 B sorted). They go before any erasure of the batch,
    // which must find them.
    thread_local std::vector<write_record*> by_time;
    by_time.clear();
    const auto put_dedupe = [&txn](write_record& rec) {
      // Lent for the put and given back even when it throws (the transaction may run
      // again after a map growth).
      std::optional<lent> id, reply;
      if (rec.dedupe_lends) {
        id.emplace(rec.dedupe->profile_id, rec.profile_id);
        reply.emplace(rec.dedupe->reply, rec.reply);
      }
      if (rec.dedupe_by_time)
        storage::dedupe_table::put_by_time(txn, rec.dedupe_hash, rec.dedupe_source, rec.dedupe_message_id(), *rec.dedupe);
      else
        storage::dedupe_table::put(txn, rec.dedupe_source, rec.dedupe_message_id(), *rec.dedupe);
    };
    const auto put_by_time_sorted = [&] {
      const auto key = [](const write_record* r) {
        return storage::dedupe_table::time_key_order(r->dedupe->ts, r->dedupe_hash, r->dedupe_source,
                                                     r->dedupe_message_id());
      };
      std::sort(by_time.begin(), by_time.end(),
                [&key](const write_record* a, const write_record* b) { return key(a) < key(b); });
      for (auto* rec : by_time)
        put_dedupe(*rec);
      by_time.clear();
    };
    for (auto& rec : batch) {
      if (rec.entry)
        storage::journal_table::append(txn, position++, rec.profile_id, *rec.entry);
      if (rec.snapshot)
        storage::profile_table::put(txn, *rec.snapshot);
      else if (!rec.snapshot_encoded.empty())
        storage::profile_table::put_encoded(txn, rec.profile_id, rec.snapshot_encoded);
      for (const auto& id : rec.links)
        storage::identity_table::put(txn, id, rec.profile_id);
      // A merge: the merged-away profile's identities now name the survivor, its id
      // stays resolvable through an alias, and its own state (now in the
      // survivor's snapshot, written above) goes.
      for (const auto& merged : rec.merged_away) {
        storage::identity_table::move_all(txn, merged, rec.profile_id);
        storage::alias_table::put(txn, merged, rec.profile_id);
        storage::profile_table::erase(txn, merged);  // its journal entries are dead now
        storage::timer_table::erase_profile(txn, merged);  // the survivor's timers are put below
        // Its audit trail joins the survivor's (so that erasing the survivor erases
        // it too); retention follows the survivor's own due time.
        storage::audit_table::move_all(txn, merged, rec.profile_id);
        storage::expiry_table::clear(txn, merged);
      }
      if (rec.dedupe) {
        if (rec.dedupe_by_time)
          by_time.push_back(&rec);
        else
          put_dedupe(rec);
      }
      for (const auto& t : rec.timer_erases)
        storage::timer_table::erase(txn, t);
      for (const auto& t : rec.timer_puts)
        storage::timer_table::put(txn, t);
      for (const auto& o : rec.outbox_puts)
        storage::outbox_table::put(txn, o);
      for (const auto& key : rec.outbox_erases)
        storage::outbox_table::erase(txn, key);
      for (const auto& o : rec.outbox_failed)
        storage::outbox_table::mark_failed(txn, o);
      for (const auto& o : rec.outbox_attempts)
        storage::outbox_table::record_attempts(txn, o);
      for (const auto& a : rec.audit)
        storage::audit_table::append(txn, a);
      if (rec.expiry_clear)
        storage::expiry_table::clear(txn, rec.profile_id);
      else if (rec.expiry_due)
        storage::expiry_table::set(txn, rec.profile_id, *rec.expiry_due);
      if (rec.erase) {
        put_by_time_sorted();
        apply_erasure(txn, *rec.erase);
      }
    }
    put_by_time_sorted();
    for (const auto* kv : meta)
      storage::meta_table::put(txn, kv->first, kv->second);
    // Old dedupe buckets are dropped whole, a bounded slice per commit; replies stored
    // by time leave from the front (a minute's slack for the actors' clocks).
    if (gc)
      storage::dedupe_table::drop_before(txn, now - options_.dedupe_window - std::chrono::hours(24), 10000);
    if (commits_since_gc_ % 16 == 0)
      storage::dedupe_table::drop_by_time_before(txn, now - options_.dedupe_window - std::chrono::minutes(1), 10000);
  }, reclaims ? storage::env::commit_mode::reclaim : storage::env::commit_mode::normal);
  bool ok = !ec;
  commits_.fetch_add(1, std::memory_order_relaxed);
  records_.fetch_add(batch.size(), std::memory_order_relaxed);
  if (!ok) {
    failed_.fetch_add(batch.size(), std::memory_order_relaxed);
    spdlog::error("journal commit of {} records failed: {}", batch.size(), ec.message());
  }
  bool full = ec == storage::errc::map_full || ec == storage::errc::disk_full;
  if (!ok && !full)
    sticky_ = ec;
  if (!ok) {
    // The source's changes were taken: a failed commit keeps them for the next one
    // (the records fail and their owners reload, but the counters stay as they are).
    // Copied first: `meta` may point into meta_unwritten_ itself.
    std::vector<std::pair<std::string, std::string>> keep;
    for (const auto* kv : meta)
      keep.push_back(*kv);
    meta_unwritten_ = std::move(keep);
  } else {
    meta_unwritten_.clear();
    // The index follows the commit before any on_done runs (a reload reads it).
    std::uint64_t p = next_position_;
    for (const auto& rec : batch) {
      if (rec.entry)
        index_.appended(rec.profile_id, p++);
      if (rec.has_snapshot())
        index_.covered(rec.profile_id);
      for (const auto& merged : rec.merged_away)
        index_.covered(merged);
      if (rec.erase) {
        index_.covered(rec.erase->profile_id);
        for (const auto& merged : rec.erase->merged_from)
          index_.covered(merged);
      }
    }
    const std::uint64_t appended = position - next_position_;
    next_position_ = position;
    dropped_below_ = dropped_below;
    ask_for_checkpoints(appended);
  }
  // Replies travel per lane, one hand-off per lane per commit (one lane per I/O
  // thread of the gateway, in the order the records came); sinks without a lane get
  // theirs one by one.
  struct lane_batch {
    reply_lane* lane;
    std::vector<reply_lane::item> items;
  };
  thread_local std::vector<lane_batch> lanes;
  for (auto& rec : batch) {
    // on_done first: what it changes (an activated policy) holds before the reply.
    if (rec.on_done)
      rec.on_done(ok);
    if (ok && rec.committed)
      rec.committed->store(rec.seq, std::memory_order_release);
    if (ok && rec.sealed)
      rec.sealed->store(rec.sealed_mark);
    if (!rec.sink)
      continue;
    std::string bytes = ok ? encode_for(rec.format, std::move(rec.reply))
                           : encode_for(rec.format, error_reply(rec.message_id(), full ? "overloaded" : "internal",
                                                                full ? "storage is full" : "storage commit failed"));
    const int status = ok ? 200 : full ? 503 : 500;
    auto* l = rec.sink->lane();
    if (!l) {
      rec.sink->deliver(rec.slot, std::move(bytes), status);
      continue;
    }
    auto it = std::find_if(lanes.begin(), lanes.end(), [l](const lane_batch& b) { return b.lane == l; });
    if (it == lanes.end()) {
      lanes.push_back({l, {}});
      it = std::prev(lanes.end());
      it->items.reserve(batch.size());
    }
    it->items.push_back({std::move(rec.sink), rec.slot, std::move(bytes), status});
  }
  for (auto& b : lanes)
    b.lane->post(std::move(b.items));
  lanes.clear();
}

}  // namespace nudge::actors
