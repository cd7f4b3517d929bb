#include "actors/ids.hpp"

#include <chrono>
#include <cstdint>
#include <random>

namespace nudge::actors {

std::string new_id(char prefix) {
  static constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto ms = static_cast<std::uint64_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  std::string out;
  out.reserve(28);
  out.push_back(prefix);
  out.push_back('-');
  for (int i = 9; i >= 0; --i)  // 10 characters of time (50 bits, top 2 zero)
    out.push_back(alphabet[(ms >> (i * 5)) & 31]);
  std::uint64_t r1 = rng(), r2 = rng();
  for (int i = 0; i < 16; ++i) {  // 16 characters of randomness (80 bits)
    std::uint64_t bits = i < 12 ? (r1 >> (i * 5)) : (r2 >> ((i - 12) * 5));
    out.push_back(alphabet[bits & 31]);
  }
  return out;
}

}  // namespace nudge::actors
