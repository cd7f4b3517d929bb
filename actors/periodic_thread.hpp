// A thread that calls a function every `period` until stopped: the retention
// sweeper's and the directory's idle sweep's clock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include <pthread.h>

namespace nudge::actors {

class periodic_thread {
public:
  /// Starts the thread, named `name` (at most 15 characters: /proc/PID/task/*/comm,
  /// top -H, perf); the first call comes one period from now.
  periodic_thread(const char* name, std::chrono::milliseconds period, std::function<void()> fn)
    : period_(period), fn_(std::move(fn)), thread_([this, name] {
        pthread_setname_np(pthread_self(), name);
        run();
      }) {}
  ~periodic_thread() { stop(); }
  periodic_thread(const periodic_thread&) = delete;
  periodic_thread& operator=(const periodic_thread&) = delete;

  /// Stops the thread (idempotent) after the call in progress, if any.
  void stop() {
    {
      std::lock_guard<std::mutex> guard(mtx_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable())
      thread_.join();
  }

private:
  void run() {
    std::unique_lock<std::mutex> lock(mtx_);
    while (!stopping_) {
      cv_.wait_for(lock, period_, [this] { return stopping_; });
      if (stopping_)
        return;
      lock.unlock();
      fn_();
      lock.lock();
    }
  }

  std::chrono::milliseconds period_;
  std::function<void()> fn_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace nudge::actors
