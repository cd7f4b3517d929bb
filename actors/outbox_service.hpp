// Delivers the outbox (storage/outbox_table) to the configured destinations: at least
// once, `decision_id` as the receiver's idempotency key.
//
// Entries reach it two ways: added() after the commit that wrote them (the same
// commit as their decision), and reads of the outbox table at start and whenever
// entries were left in LMDB because memory was full (at most `max_in_memory` are
// held). Each destination has its own queue and at most `max_in_flight` requests in
// flight, so a slow or dead destination holds only its own entries; nothing here
// waits on a decision path. A 2xx deletes the entry (through the journal writer); any
// other answer or a timeout retries after an exponential backoff with jitter
// (base·2^(attempt-1), capped, times a uniform factor in [0.5, 1]); after
// max_attempts the entry moves to the failed table and stays there. Each failed
// attempt's count and the wall-clock time of the next attempt are stored on the
// entry, so a restart continues the series and waits out the backoff (at most
// backoff_max, should the clock have moved back).
//
// Threads: one thread of its own runs the queues and timers; `send` is called on it
// and must not block (it starts an asynchronous request); its completion may run on
// any thread. added() and stats() may be called from any thread.
#pragma once

#include "actors/destination.hpp"
#include "storage/outbox_entry.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace nudge::actors {

class journal;
struct context;

struct outbox_options {
  std::size_t max_in_memory = 20000;
  std::size_t max_in_flight = 16;  ///< per destination
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_max{300000};
};

struct outbox_stats {
  std::uint64_t pending = 0;    ///< entries in the outbox table (backlog), at the latest commit
  std::uint64_t failed = 0;     ///< entries in the failed table (gave up), at the latest commit
  std::uint64_t delivered = 0;  ///< since start
  std::uint64_t attempts = 0;   ///< since start
  std::uint64_t retries = 0;    ///< failed attempts since start
  std::uint64_t in_flight = 0;
};

class outbox_service {
public:
  /// Status of one attempt: the HTTP status, or 0 for a transport error or timeout.
  using completion = std::function<void(int status)>;
  /// Starts one signed POST of `body` to `dest`; calls `done` exactly once, later.
  using send_fn = std::function<void(const destination& dest, const std::string& body, completion done)>;

  /// `ctx.env` and `ctx.writer` must outlive it. Starts its thread.
  outbox_service(context& ctx, std::vector<destination> destinations, send_fn send, outbox_options opts = {});
  ~outbox_service();
  outbox_service(const outbox_service&) = delete;
  outbox_service& operator=(const outbox_service&) = delete;

  /// The destinations that take `channel`. Any thread.
  std::vector<const destination*> destinations_for(std::string_view channel) const;

  /// Entries just committed to the outbox table. Any thread.
  void added(std::vector<storage::outbox_entry> entries);

  /// Drops the profile's entries held in memory (it is being erased; the erasure
  /// removes them from LMDB). Any thread.
  void forget_profile(const std::string& profile_id);

  /// Stops the thread; requests in flight are abandoned (their entries stay). Idempotent.
  void stop();

  outbox_stats stats() const;

private:
  enum class state { queued, in_flight, waiting, closing };
  struct item {
    storage::outbox_entry entry;
    std::size_t dest = 0;
    int attempts = 0;
    state st = state::queued;
  };
  struct dest_queue {
    std::deque<std::string> ready;  ///< keys
    std::size_t in_flight = 0;
  };

  void run();
  bool hold(storage::outbox_entry e);  ///< false when unknown destination or memory full
  void rescan(std::unique_lock<std::mutex>& lock);
  void completed(const std::string& key, int status);
  void closed(const std::string& key, bool delivered, bool ok);

  context& ctx_;
  std::vector<destination> dests_;
  send_fn send_;
  outbox_options opts_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, item> items_;  ///< key → item
  std::vector<dest_queue> queues_;
  std::multimap<std::chrono::steady_clock::time_point, std::string> retry_at_;
  bool rescan_ = true;         ///< entries may be in LMDB only
  bool missed_ = false;        ///< an entry was left out during the current rescan
  std::string scan_cursor_;
  /// While a rescan reads LMDB without the lock: keys that were delivered (or given
  /// up) and profiles that were erased meanwhile. The read may predate their
  /// commits, so what it found of them is not held again.
  bool scanning_ = false;
  std::set<std::string> left_during_scan_;
  std::vector<std::string> forgotten_during_scan_;  ///< profile id + '\0'
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<std::uint64_t> delivered_{0}, attempts_{0}, retries_{0}, in_flight_{0};
  std::thread thread_;
};

}  // namespace nudge::actors
