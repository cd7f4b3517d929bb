// A fixed-bucket latency histogram for /metrics (Prometheus cumulative buckets) and
// the percentiles of /v1/stats. Lock-free: observe() from any thread, relaxed
// atomics; readers see a consistent-enough picture for monitoring.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace nudge::actors {

class latency_histogram {
public:
  /// Upper bounds in microseconds; a last implicit bucket holds the rest (+Inf).
  static constexpr std::array<std::uint64_t, 14> bounds_us{25,   50,   100,   250,   500,   1000,   2500,
                                                           5000, 10000, 25000, 50000, 100000, 250000, 1000000};

  void observe(std::chrono::nanoseconds d) noexcept {
    auto us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    std::size_t i = 0;
    while (i < bounds_us.size() && us > bounds_us[i])
      ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(d.count()), std::memory_order_relaxed);
  }

  std::uint64_t count() const noexcept {
    std::uint64_t n = 0;
    for (const auto& c : counts_)
      n += c.load(std::memory_order_relaxed);
    return n;
  }

  /// The `q` quantile (0..1) in microseconds, interpolated inside its bucket; 0 when
  /// empty; the top bound when it falls in +Inf.
  double quantile_us(double q) const noexcept {
    std::array<std::uint64_t, bounds_us.size() + 1> c{};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < c.size(); ++i)
      total += c[i] = counts_[i].load(std::memory_order_relaxed);
    if (total == 0)
      return 0;
    double rank = q * static_cast<double>(total);
    double seen = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (seen + static_cast<double>(c[i]) >= rank && c[i] > 0) {
        if (i == bounds_us.size())
          return static_cast<double>(bounds_us.back());
        double lo = i == 0 ? 0.0 : static_cast<double>(bounds_us[i - 1]);
        double hi = static_cast<double>(bounds_us[i]);
        return lo + (hi - lo) * (rank - seen) / static_cast<double>(c[i]);
      }
      seen += static_cast<double>(c[i]);
    }
    return static_cast<double>(bounds_us.back());
  }

  /// Prometheus text for histogram `name` (in seconds) with its HELP line.
  std::string prometheus(const char* name, const char* help) const {
    std::string o = std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + " histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds_us.size(); ++i) {
      cumulative += counts_[i].load(std::memory_order_relaxed);
      std::string le = i == bounds_us.size() ? "+Inf" : trim(static_cast<double>(bounds_us[i]) / 1e6);
      o += std::string(name) + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + '\n';
    }
    o += std::string(name) + "_sum " + trim(static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9) + '\n';
    o += std::string(name) + "_count " + std::to_string(cumulative) + '\n';
    return o;
  }

private:
  static std::string trim(double v) {
    std::string s = std::to_string(v);
    while (!s.empty() && s.back() == '0')
      s.pop_back();
    if (!s.empty() && s.back() == '.')
      s.pop_back();
    return s;
  }

  std::array<std::atomic<std::uint64_t>, bounds_us.size() + 1> counts_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace nudge::actors
