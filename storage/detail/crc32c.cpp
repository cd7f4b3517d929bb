#include "storage/detail/crc32c.hpp"

#include <cstring>

#include <boost/crc.hpp>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace nudge::storage::detail {
namespace {

using boost_crc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(const unsigned char* p, std::size_t n,
                                                              std::uint32_t crc) noexcept {
  std::uint64_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; --n, ++p)
    c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}

const bool have_sse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(__x86_64__)
  if (have_sse42)
    return crc32c_sse42(p, size, crc);
#endif
  return crc32c_table(p, size, crc);
}

std::uint32_t crc32c_table(const void* data, std::size_t size, std::uint32_t crc) noexcept {
  // Boost's reflected CRC continues from a previous value through its initial
  // remainder, which it takes unreflected.
  std::uint32_t rem = crc ^ 0xFFFFFFFFu;
  std::uint32_t unreflected = 0;
  for (int bit = 0; bit < 32; ++bit, rem >>= 1)
    unreflected = (unreflected << 1) | (rem & 1u);
  boost_crc32c c(unreflected);
  c.process_bytes(data, size);
  return c.checksum();
}

}  // namespace nudge::storage::detail
