// Retention of idle anonymous profiles ([profiles] anonymous_ttl): a thread that
// wakes every `period`, reads the front of the expiry index (due <= now; never a scan
// of all profiles) and asks each due profile's actor to erase itself. The actor
// decides (it may have been touched since): anonymous-only and idle for the ttl →
// erased like a DELETE (reason "anonymous_ttl"); otherwise its due time moves.
#pragma once

#include "actors/periodic_thread.hpp"

#include <chrono>
#include <cstddef>

namespace nudge::actors {

struct context;

class retention_sweeper {
public:
  /// Starts the thread; `ctx` (its env and directory) must outlive the sweeper.
  retention_sweeper(context& ctx, std::chrono::milliseconds period, std::size_t batch = 1000);
  ~retention_sweeper();
  retention_sweeper(const retention_sweeper&) = delete;
  retention_sweeper& operator=(const retention_sweeper&) = delete;

  /// Stops the thread (idempotent); call before the directory goes.
  void stop();

  /// One pass: dispatches up to `batch` due profiles; returns how many. Any thread.
  std::size_t sweep_once();

private:
  context& ctx_;
  std::size_t batch_;
  periodic_thread thread_;  // last: its first call may come once the rest exists
};

}  // namespace nudge::actors
