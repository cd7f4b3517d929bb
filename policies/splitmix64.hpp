// splitmix64 (Steele, Lea, Flood 2014) as a UniformRandomBitGenerator: 8 bytes of
// state, cheap to seed per draw. The policy engine seeds one per Thompson draw; a
// profile actor draws its decisions' seeds from one (a std::mt19937_64 there cost
// 2.5 KiB per active profile).
#pragma once

#include <cstdint>

namespace nudge::policies {

class splitmix64 {
public:
  using result_type = std::uint64_t;
  explicit splitmix64(std::uint64_t seed) noexcept : state_(seed) {}
  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~result_type{0}; }
  result_type operator()() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

private:
  std::uint64_t state_;
};

}  // namespace nudge::policies
