// The journal writer: the one place that makes LMDB write transactions.
//
// Profile actors (any thread) submit write records; whoever holds the baton (the
// writer thread or, in "process" durability when no commit runs, the submitting
// actor's own thread: submit_here) drains everything pending into ONE transaction
// (group commit: hundreds of records under load, one when idle, no artificial wait),
// commits it (and syncs it in "power" durability), then releases the replies of
// that batch in submit order. A reply therefore never goes out before its message is
// on disk. When a commit fails, every record of the batch is answered with an error
// (`overloaded` when the map is full, else `internal`) and its on_done(false) lets
// the owner reload from storage.
#pragma once

#include "actors/erasure.hpp"
#include "actors/journal_index.hpp"
#include "actors/message.hpp"
#include "storage/audit_record.hpp"
#include "storage/dedupe_table.hpp"
#include "storage/journal_table.hpp"
#include "storage/outbox_entry.hpp"
#include "storage/profile_table.hpp"
#include "storage/timer_key.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace nudge::storage {
class env;
}

namespace nudge::actors {

/// A profile's record of which chunks of its logs are stored full: the writer stores
/// a committed snapshot's marks, the profile reads them for its next snapshot. Each
/// mark alone is one a committed snapshot left, which is all encode() needs.
struct stored_chunk_marks {
  std::atomic<std::uint64_t> decisions{0};
  std::atomic<std::uint64_t> history{0};
  std::atomic<std::uint64_t> seen{0};
  void store(storage::profile_table::chunk_marks m) noexcept {
    decisions.store(m.decisions, std::memory_order_release);
    history.store(m.history, std::memory_order_release);
    seen.store(m.seen, std::memory_order_release);
  }
  storage::profile_table::chunk_marks load() const noexcept {
    return {decisions.load(std::memory_order_acquire), history.load(std::memory_order_acquire),
            seen.load(std::memory_order_acquire)};
  }
};

struct write_record {
  /// Writes nothing: settles (on_done) after every record submitted before it. A
  /// batch of markers alone commits nothing and needs no sync.
  bool marker = false;
  std::string profile_id;
  std::optional<storage::journal_entry> entry;
  /// Shared with the directory's parked copy when a passivation writes it. Covers
  /// every journal entry of the profile committed before it (journal_index.hpp).
  std::shared_ptr<const storage::profile_snapshot> snapshot;
  /// Or profile_id's snapshot as profile_table::encode() made (when nobody else reads
  /// it: a few blocks instead of a copy of the state). Covers the same entries.
  storage::profile_table::encoded_snapshot snapshot_encoded;
  /// With snapshot_encoded: after a successful commit the writer stores `sealed_mark`
  /// (profile_table::sealed_after() of the snapshot's state) here: the owner's record
  /// of which chunks of its logs are stored full.
  std::shared_ptr<stored_chunk_marks> sealed;
  storage::profile_table::chunk_marks sealed_mark;
  bool has_snapshot() const noexcept { return snapshot != nullptr || !snapshot_encoded.empty(); }
  /// The id of the message this record answers: request_id, or the entry's message_id
  /// when request_id is empty (a profile actor's record, which copies the id only once).
  std::string_view message_id() const noexcept {
    return request_id.empty() && entry ? std::string_view(entry->message_id) : std::string_view(request_id);
  }
  /// The id the dedupe entry is stored under: the entry's message_id when the record
  /// lends its own fields (dedupe_lends), else dedupe_id.
  std::string_view dedupe_message_id() const noexcept {
    return dedupe_lends && entry ? std::string_view(entry->message_id) : std::string_view(dedupe_id);
  }
  std::vector<policies::identity> links;  ///< identity index entries → profile_id
  /// Profiles merged into profile_id (whose snapshot, written in this record, holds
  /// their state): identities moved, alias written, their own state erased.
  std::vector<std::string> merged_away;
  std::optional<storage::dedupe_entry> dedupe;
  /// Meta table puts. Values that every commit may rewrite (the shared counters) come
  /// from the meta source at commit time instead (journal::on_meta).
  std::vector<std::pair<std::string, std::string>> meta;
  std::string dedupe_source;
  std::string dedupe_id;  ///< unused when dedupe_lends (see dedupe_message_id())
  /// Stored by time under `dedupe_hash` (the profile noted it as seen), else by id.
  bool dedupe_by_time = false;
  /// `dedupe` leaves its profile_id and reply empty: the writer lends it this record's
  /// own `profile_id` and `reply` for the put, and stores it under the entry's
  /// message_id (a profile actor's records: no copy of any of them per message).
  bool dedupe_lends = false;
  std::uint64_t dedupe_hash = 0;
  // Schedules and destinations (actors/schedule_logic.hpp, actors/outbox_service.hpp).
  std::vector<storage::timer_key> timer_erases;  ///< applied before timer_puts
  std::vector<storage::timer_key> timer_puts;
  std::vector<storage::outbox_entry> outbox_puts;
  std::vector<std::string> outbox_erases;          ///< keys of delivered entries
  std::vector<storage::outbox_entry> outbox_failed;  ///< moved to the failed table
  std::vector<storage::outbox_entry> outbox_attempts;  ///< pending entries whose attempts are stored
  /// Audit records appended in the same commit (consent changes, merges, ...).
  std::vector<storage::audit_record> audit;
  /// Retention: moves the profile's due time in the expiry index / drops it.
  std::optional<policies::timestamp> expiry_due;
  bool expiry_clear = false;
  /// Erases everything of erase->profile_id, after the rest of this record; the
  /// writer fills erase->counts before on_done runs.
  std::shared_ptr<erasure_request> erase;
  // The reply released after the commit (sink may be null).
  std::shared_ptr<reply_sink> sink;
  std::size_t slot = 0;
  wire_format format = wire_format::json;
  std::string request_id;  ///< empty: the entry's message_id (see message_id())
  std::string reply;  ///< JSON; transcoded for MessagePack requests
  std::function<void(bool committed)> on_done;
  /// After a successful commit the writer stores `seq` here (the owner's record of
  /// what is durable; records of one owner commit in submit order).
  std::shared_ptr<std::atomic<std::uint64_t>> committed;
  std::uint64_t seq = 0;
};

struct journal_stats {
  std::uint64_t commits = 0;
  std::uint64_t records = 0;
  std::uint64_t failed_records = 0;
  std::uint64_t backlog = 0;
  std::uint64_t live_entries = 0;   ///< journal entries no snapshot covers yet
  std::uint64_t live_profiles = 0;  ///< profiles that have such entries
  std::uint64_t checkpoints_asked = 0;  ///< snapshots asked for by the journal since start
};

struct journal_options {
  std::chrono::milliseconds dedupe_window = std::chrono::hours(24);
  /// When more than this many journal positions lie between the oldest live entry
  /// and the newest, the profiles holding the oldest are asked for a snapshot
  /// (checkpoint handler), so that what a start after a crash re-indexes stays
  /// bounded. Asking starts at three quarters of it, paced by what each commit appends
  /// (ask_for_checkpoints). A clean stop leaves only the live entries, so this bounds
  /// the scan of a start after a crash: 200,000 at most 0.3-0.8 s over 1,000,000
  /// stored profiles (docs/BENCHMARKS.md, "A clean stop leaves only live entries").
  std::uint64_t checkpoint_entries = 200000;
  /// At most this many profiles with live entries: past it the oldest are asked for a
  /// snapshot, one per record appended. A start after a crash looks up the snapshot of
  /// each (~3-4 µs over 1,000,000 stored profiles), and profiles of a message or two
  /// each (cold ones) reach this long before a wide span does. 0: no such bound.
  std::uint64_t checkpoint_profiles = 200000;
};

class journal {
public:
  /// Indexes the journal's live entries (start_error() tells whether that failed),
  /// then starts the writer thread. `env` must outlive the journal.
  journal(storage::env& env, journal_options options = {});
  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  /// Queues a record; thread-safe, never blocks on I/O.
  /// Taken by reference: a record is ~1 KB of members, and each move of it cost ~550
  /// instructions and its emptied shell ~250 more to destroy.
  void submit(write_record&& rec);

  /// Queues a record and, when no commit is in progress and the environment does not
  /// sync each commit, commits the queue on the calling thread (flat combining: no
  /// hand-off to the writer thread, no wake-up). The batch's on_done callbacks, other
  /// submitters' included, then run on the calling thread too. For profile actors: the
  /// caller holds no lock and no read transaction.
  void submit_here(write_record&& rec);

  /// On the calling thread from now on (`on`) or no longer: submit_here() only queues,
  /// and the thread commits what it queued by calling flush_here(), so that the
  /// records of several actors it ran one after another share one commit (the
  /// gateway's I/O threads: net/io_unit.hpp).
  static void defer_here(bool on) noexcept;
  /// Commits what is pending as submit_here() would (or leaves it to the writer
  /// thread, or to whoever commits now). After records submitted with defer_here.
  /// `to_writer`: leaves it to the writer thread in any case, for a caller with more
  /// work waiting (an I/O thread behind on its queue: net/io_unit.hpp), which then
  /// goes on with that work while the writer commits on another core.
  void flush_here(bool to_writer = false);

  /// Commits what is pending, then stops the thread. Idempotent.
  void stop();

  journal_stats stats() const;

  /// Set when indexing the journal at construction failed (an unreadable entry or
  /// snapshot): the service must not start on it.
  std::error_code start_error() const noexcept { return start_error_; }

  /// The live entries of each profile (what activation replays). Any thread.
  const journal_index& index() const noexcept { return index_; }

  /// Receives the profiles asked for a snapshot (see journal_options); called on the
  /// committing thread with no lock held. Set it before the first submit.
  void on_checkpoint(std::function<void(std::vector<std::string>)> handler) { checkpoint_ = std::move(handler); }
  /// Appends the meta entries that changed since its last call (the shared counters:
  /// counter_store::take_dirty); called by the committing thread once per commit that
  /// writes anything, before it starts. Whatever it returns is newer than the meta of
  /// the batch's records and is put in the same transaction, once per key, not once
  /// per record. Set it before the first submit.
  void on_meta(std::function<void(std::vector<std::pair<std::string, std::string>>&)> source) {
    meta_source_ = std::move(source);
  }
  /// No more asks from now on (shutdown: the handler's directory is passivating). Any thread.
  void stop_checkpoints() { checkpoints_stopped_.store(true, std::memory_order_release); }

private:
  void run();
  /// submit_here's commit on the caller's thread, with `lock` held on entry; returns
  /// with it released.
  void combine(std::unique_lock<std::mutex>& lock, bool wake);
  /// Commits what is pending as one batch (`lock` released meanwhile); the caller
  /// holds the baton (committing_) and `lock`.
  void commit_pending(std::unique_lock<std::mutex>& lock);
  /// commit_pending() until nothing is pending.
  void drain(std::unique_lock<std::mutex>& lock);
  void commit_batch(std::vector<write_record>& batch);

  /// Builds index_ from the journal and the snapshots; sets next_position_.
  std::error_code build_index();
  /// After a successful commit that appended `appended` entries: asks the profiles that
  /// hold the oldest live entries for a snapshot when the journal's live span is over
  /// three quarters of checkpoint_entries, a number paced by `appended` below the bound,
  /// and the oldest live profiles past checkpoint_profiles, up to `appended` of them.
  void ask_for_checkpoints(std::size_t appended);
  /// At a clean stop: drops every dead entry, those below the oldest live one and those
  /// above it (commits of its own), so that the next start reads only live ones.
  void drop_dead_entries();

  storage::env& env_;
  journal_options options_;
  journal_index index_;
  std::function<void(std::vector<std::string>)> checkpoint_;
  std::function<void(std::vector<std::pair<std::string, std::string>>&)> meta_source_;
  std::error_code start_error_;
  // The baton holder's: the next journal position, and every position below
  // dropped_below_ is gone from the journal.
  std::uint64_t next_position_ = 1;
  std::uint64_t dropped_below_ = 1;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<write_record> pending_;
  /// The baton: whoever sets it (the writer thread or a submit_here caller) drains
  /// pending_ until it is empty; records therefore commit, and replies leave, in
  /// submit order.
  bool committing_ = false;
  const bool combine_;
  std::vector<write_record> batch_;  ///< the baton holder's
  bool stopping_ = false;
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> records_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> checkpoints_asked_{0};
  /// Below the bound: records appended times the span's excess over where pacing starts,
  /// not yet turned into asks (ask_for_checkpoints). Writer only.
  std::uint64_t ask_credit_ = 0;
  std::atomic<bool> checkpoints_stopped_{false};
  std::uint64_t commits_since_gc_ = 0;  ///< the baton holder's
  /// Meta entries of a failed commit, put by the next one (the baton holder's).
  std::vector<std::pair<std::string, std::string>> meta_unwritten_;
  /// The baton holder's: the failure that makes the writer refuse writes until a full
  /// sync of the environment succeeds again (see commit_batch).
  std::error_code sticky_;
  std::thread thread_;
};

}  // namespace nudge::actors
