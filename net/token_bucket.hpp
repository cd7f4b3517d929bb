// A token bucket: `per_second` tokens refill continuously up to `burst`; a request
// takes one token per message. Thread-safe (a short mutex: sessions of one source
// share it across strands).
#pragma once

#include <algorithm>
#include <chrono>
#include <mutex>

namespace nudge::net {

class token_bucket {
public:
  using clock = std::chrono::steady_clock;

  token_bucket(double per_second, double burst)
    : per_second_(per_second), burst_(std::max(burst, 1.0)), tokens_(burst_), last_(clock::now()) {}

  /// Takes `n` tokens if that many are there (all or nothing); false otherwise.
  bool try_take(double n, clock::time_point now = clock::now()) {
    std::lock_guard<std::mutex> guard(mtx_);
    if (now > last_) {
      tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * per_second_);
      last_ = now;
    }
    if (tokens_ < n)
      return false;
    tokens_ -= n;
    return true;
  }

private:
  const double per_second_;
  const double burst_;
  std::mutex mtx_;
  double tokens_;
  clock::time_point last_;
};

}  // namespace nudge::net
