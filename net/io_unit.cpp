#include "net/io_unit.hpp"

#include "actors/journal.hpp"

#include <caf/actor_system.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

namespace nudge::net {

namespace {
/// Messages an actor handles per resume before the next queued actor's turn.
constexpr std::size_t max_throughput = 64;
/// The period over which the share of the thread's time that actors took is measured.
constexpr std::chrono::milliseconds window{2};
}  // namespace

// Measured with a closed loop of 1,024 messages in flight, which keeps the thread busy:
// nearly every run started 0.2–2 ms after it was posted. In an open loop at 34,000/s,
// which the thread keeps up with, 90% started within 50 µs. Scenario 1's closed loop
// did 8% more with it (docs/BENCHMARKS.md, "Commits handed to the writer thread
// (tried, reverted)" and "Allocation ahead, off the commit path", where it came back).
const std::chrono::microseconds io_unit::behind{200};

io_unit::io_unit(caf::actor_system& sys, asio::io_context& ioc, double share, actors::journal* writer)
  : caf::execution_unit(&sys), ioc_(ioc), share_(share), writer_(writer) {
}

io_unit::~io_unit() {
  hand_over();
}

void io_unit::exec_later(caf::resumable* job) {
  if (over_share_) {
    // A window without runs ends the over-share: no run comes to say so.
    const auto now = clock::now();
    if (now - window_start_ < 2 * window) {
      ++offloaded_;
      system().scheduler().enqueue(job);
      return;
    }
    over_share_ = false;
    start_window(now);
  }
  queue(job);
}

void io_unit::queue(caf::resumable* job) {
  queued_.push_back(job);
  if (!posted_) {
    posted_ = true;
    posted_at_ = clock::now();
    asio::post(ioc_, [this] { run(); });
  }
}

void io_unit::start_window(clock::time_point now) {
  window_start_ = now;
  window_busy_ = {};
}

void io_unit::run() {
  const auto start = clock::now();
  // Started this late, the run found that much work queued ahead of it: the thread is
  // behind, and its records go to the writer thread instead of keeping it longer.
  const bool thread_behind = start - posted_at_ >= behind;
  posted_ = false;
  running_.swap(queued_);
  if (writer_)
    actors::journal::defer_here(true);
  for (auto* job : running_) {
    ++resumed_;
    switch (job->resume(this, max_throughput)) {
      case caf::resumable::resume_later:
        // More messages wait: its turn comes again after the others (the reference
        // stays with the queue).
        queue(job);
        break;
      case caf::resumable::done:
      case caf::resumable::awaiting_message:
      case caf::resumable::shutdown_execution_unit:
        intrusive_ptr_release(job);
        break;
    }
  }
  running_.clear();
  if (writer_) {
    actors::journal::defer_here(false);
    writer_->flush_here(thread_behind);
    if (thread_behind)
      ++handed_to_writer_;
  }
  const auto end = clock::now();
  window_busy_ += end - start;
  if (end - window_start_ >= window) {
    over_share_ = window_busy_ > (end - window_start_) * share_;
    start_window(end);
  }
}

void io_unit::hand_over() {
  for (auto* job : running_)
    system().scheduler().enqueue(job);
  running_.clear();
  for (auto* job : queued_)
    system().scheduler().enqueue(job);
  queued_.clear();
  posted_ = false;
}

}  // namespace nudge::net
