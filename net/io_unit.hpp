// The gateway's I/O thread as a CAF execution unit (actors/local_unit.hpp). A profile
// actor that a message from this thread finds idle is resumed here, in a handler
// posted behind the one that sent it, instead of on a scheduler worker: a message then
// crosses no thread between its frame and its reply (in "process" durability the
// actor commits on this thread too, journal::submit_here), where the scheduler costs
// a worker's wake-up and then this thread's for the reply. Actors started or woken by
// any other thread (activation's first message, timers, the outbox, the directory's
// sweeps) run on CAF's workers as before; an actor is resumed by one unit at a time
// whichever it is (CAF hands an actor to the unit that unblocked its mailbox).
//
// Sound only while one thread runs the io_context: the job queue is that thread's
// (exec_later is called only there, by senders on it and by the actors it resumes).
#pragma once

#include "net/beast.hpp"

#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace nudge::actors {
class journal;
}

namespace nudge::net {

class io_unit final : public caf::execution_unit {
public:
  /// `share`: the part of the I/O thread's time that actors may take (measured over
  /// windows of a few milliseconds); past it, the actors it wakes go to CAF's
  /// scheduler, so that the thread stays free to read and write when the load would
  /// saturate it. `writer`: the journal whose records the actors run here submit;
  /// they commit together at the end of each run (journal::defer_here), on this
  /// thread, or on the writer thread when the run started `behind` or later after it
  /// was posted (the thread has other work queued); null: one by one.
  io_unit(caf::actor_system& sys, asio::io_context& ioc, double share, actors::journal* writer);
  ~io_unit() override;
  io_unit(const io_unit&) = delete;
  io_unit& operator=(const io_unit&) = delete;

  /// Queues `job` (whose reference the caller added) and posts a run if none is
  /// posted. The I/O thread only.
  void exec_later(caf::resumable* job) override;

  /// After the I/O thread has stopped: hands every actor still queued to CAF's
  /// scheduler (the io_context dropped the run that would have resumed them).
  void hand_over();

  /// Actors resumed here, and actors handed to the scheduler past the share.
  std::uint64_t resumed() const noexcept { return resumed_; }
  std::uint64_t offloaded() const noexcept { return offloaded_; }
  /// Runs whose records were left to the writer thread.
  std::uint64_t handed_to_writer() const noexcept { return handed_to_writer_; }

  /// How late after its post a run must start for its records to go to the writer.
  static const std::chrono::microseconds behind;

private:
  /// Resumes what was queued when it started; what they wake queues for the next run.
  void run();
  /// Queues `job` for the next run, posting it if none is posted.
  void queue(caf::resumable* job);

  using clock = std::chrono::steady_clock;
  void start_window(clock::time_point now);

  asio::io_context& ioc_;
  const double share_;
  actors::journal* writer_;
  clock::time_point window_start_ = clock::now();
  clock::duration window_busy_{};  ///< time spent in run() since window_start_
  bool over_share_ = false;        ///< the last window's runs took more than share_
  std::vector<caf::resumable*> queued_;
  std::vector<caf::resumable*> running_;
  bool posted_ = false;
  clock::time_point posted_at_{};
  std::uint64_t resumed_ = 0;
  std::uint64_t handed_to_writer_ = 0;
  std::uint64_t offloaded_ = 0;
};

}  // namespace nudge::net
