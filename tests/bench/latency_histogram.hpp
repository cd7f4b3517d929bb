// A log-linear histogram of non-negative integer values (microseconds here), in the
// manner of HdrHistogram: values below 2^sub_bucket_bits are counted exactly; above, each
// power-of-two range is split into 2^(sub_bucket_bits-1) equal buckets, so a reported
// value is within 1/2^(sub_bucket_bits-1) (0.4% with the default 9 bits) of the truth.
// Fixed memory (114 KiB), no allocation after construction, O(1) record.
// Not thread-safe: give each thread or session its own and merge() them at the end.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nudge::bench {

class latency_histogram {
public:
  static constexpr unsigned sub_bucket_bits = 9;

  latency_histogram() : counts_(bucket_count, 0) {}

  void record(std::uint64_t value) {
    ++counts_[index_of(value)];
    ++total_;
    max_ = std::max(max_, value);
    min_ = std::min(min_, value);
    sum_ += value;
  }

  void merge(const latency_histogram& other) {
    for (std::size_t i = 0; i < bucket_count; ++i)
      counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
    sum_ += other.sum_;
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return total_ ? max_ : 0; }
  std::uint64_t min() const { return total_ ? min_ : 0; }
  double mean() const {
    return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0;
  }

  /// The smallest recorded bucket's highest equivalent value v such that at least
  /// `percentile`% of the values are <= v (HdrHistogram's convention), capped at max().
  /// 0 when empty.
  std::uint64_t value_at_percentile(double percentile) const {
    if (total_ == 0)
      return 0;
    double wanted = percentile / 100.0 * static_cast<double>(total_);
    auto target = static_cast<std::uint64_t>(wanted);
    if (static_cast<double>(target) < wanted)
      ++target;
    target = std::clamp<std::uint64_t>(target, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= target)
        return std::min(highest_equivalent(i), max_);
    }
    return max_;
  }

private:
  static constexpr std::uint64_t sub_bucket_count = std::uint64_t{1} << sub_bucket_bits;
  static constexpr std::uint64_t half_count = sub_bucket_count / 2;
  // Shifts run from 1 (values in [S, 2S)) to 64 - sub_bucket_bits (values up to 2^64-1).
  static constexpr std::size_t bucket_count =
      sub_bucket_count + (64 - sub_bucket_bits) * half_count;

  static std::size_t index_of(std::uint64_t v) {
    if (v < sub_bucket_count)
      return static_cast<std::size_t>(v);
    unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    unsigned shift = msb - sub_bucket_bits + 1;
    return static_cast<std::size_t>(shift * half_count + (v >> shift));
  }

  static std::uint64_t highest_equivalent(std::size_t index) {
    if (index < sub_bucket_count)
      return index;
    std::uint64_t shift = index / half_count - 1;
    std::uint64_t mantissa = index % half_count + half_count;
    return ((mantissa + 1) << shift) - 1;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t sum_ = 0;
};

} // namespace nudge::bench
