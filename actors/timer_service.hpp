// Fires armed schedule timers (POLICY.md, Schedules) on time, also those that came
// due while the service was down.
//
// Keeps in memory only the next due entries of the LMDB due-time index
// (storage/timer_table): a batch of at most `batch` keys read from where the last
// read stopped (`cursor_`), never a scan of all profiles or all timers. Every timer
// whose key sorts at or before the cursor is in memory; newly armed ones are
// reported by the journal writer after their commit (armed()) and kept when they
// fall within the cursor. A firing dispatches a `fire` message through the directory
// (activating a passivated profile); the profile checks that the timer is still
// armed at that due time, so a stale or repeated firing changes nothing.
//
// Why a thread and not an actor: its work is waiting for the next due time and for
// reports from the writer thread, which a condition variable does directly; it never
// blocks an actor or a Beast thread (armed() holds the mutex for a set insertion;
// directory::dispatch only enqueues). A flood of due timers is spread: at most
// `per_tick` firings, then a pause of `tick`, so live traffic keeps its share.
#pragma once

#include "storage/timer_key.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nudge::actors {

struct context;

struct timer_options {
  std::size_t batch = 10000;                       ///< keys read from LMDB at once
  std::chrono::milliseconds lookahead{60000};      ///< read timers due within this
  std::size_t per_tick = 100;                      ///< firings before a pause
  std::chrono::milliseconds tick{10};              ///< the pause while a flood drains
  std::chrono::milliseconds idle_wake{1000};       ///< longest sleep (re-reads the index)
};

struct timer_stats {
  std::uint64_t fired = 0;    ///< fire messages dispatched
  std::uint64_t in_memory = 0;
};

class timer_service {
public:
  /// `ctx.env` and `ctx.dir` must outlive it. Starts its thread.
  timer_service(context& ctx, timer_options opts = {});
  ~timer_service();
  timer_service(const timer_service&) = delete;
  timer_service& operator=(const timer_service&) = delete;

  /// Reports index changes committed by the journal writer. Any thread.
  void armed(const std::vector<storage::timer_key>& puts, const std::vector<storage::timer_key>& erases);

  /// Stops the thread. Idempotent.
  void stop();

  timer_stats stats() const;

private:
  void run();
  void load(std::unique_lock<std::mutex>& lock);
  void trim();

  context& ctx_;
  timer_options opts_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, storage::timer_key> next_;  ///< encoded key → timer, due order
  std::string cursor_;        ///< every index key <= cursor_ is in next_ (or fired)
  bool loaded_once_ = false;
  bool loading_ = false;                     ///< an index read runs without the lock
  std::vector<storage::timer_key> arrived_;  ///< armed() meanwhile, merged after it
  std::atomic<std::uint64_t> fired_{0};
  std::thread thread_;
};

}  // namespace nudge::actors
