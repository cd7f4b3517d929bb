// A short, immutable list of strings kept in one heap block. Profiles keep tens of
// records with several short texts each; one block per record, instead of a 32-byte
// std::string per text plus a heap block for each longer one, is most of what keeps an
// active profile small (docs/BENCHMARKS.md, scenario 3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>

namespace nudge::policies {

/// Layout of the block: a 32-bit word with the count (bit 31 set when offsets are 32
/// bits wide, that is when the texts exceed 64 KiB), the end offset of each string
/// (from the start of the texts; 16 bits wide otherwise), then the texts back to back.
/// An empty list holds no block. Copies copy the block; moves take it. Not
/// synchronised: one owner at a time.
class packed_strings {
public:
  packed_strings() = default;
  explicit packed_strings(std::span<const std::string_view> parts);
  packed_strings(std::initializer_list<std::string_view> parts)
      : packed_strings(std::span<const std::string_view>(parts.begin(), parts.size())) {}

  packed_strings(const packed_strings& other);
  packed_strings& operator=(const packed_strings& other);
  packed_strings(packed_strings&&) noexcept = default;
  packed_strings& operator=(packed_strings&&) noexcept = default;

  std::size_t size() const noexcept { return block_ ? read_u32(0) & ~wide_bit : 0; }
  bool empty() const noexcept { return size() == 0; }

  /// The string at `i` (< size()); valid while this object lives unchanged.
  std::string_view operator[](std::size_t i) const noexcept {
    const std::uint32_t head = read_u32(0);
    const std::size_t n = head & ~wide_bit;
    const std::size_t width = head & wide_bit ? 4 : 2;
    const std::uint32_t begin = i == 0 ? 0 : end_of(i - 1, width);
    return {block_.get() + 4 + width * n + begin, end_of(i, width) - begin};
  }

  /// Bytes of the heap block (0 when empty).
  std::size_t block_bytes() const noexcept;
  /// Asks the CPU to bring the block's first line into cache (a scan that will read
  /// it a few records later issues it early, so that the misses overlap).
  void prefetch() const noexcept {
    if (block_)
      __builtin_prefetch(block_.get());
  }

private:
  static constexpr std::uint32_t wide_bit = 0x8000'0000u;

  std::uint32_t read_u32(std::size_t offset) const noexcept {
    std::uint32_t v;
    __builtin_memcpy(&v, block_.get() + offset, sizeof v);
    return v;
  }
  std::uint32_t end_of(std::size_t i, std::size_t width) const noexcept {
    if (width == 4)
      return read_u32(4 + 4 * i);
    std::uint16_t v;
    __builtin_memcpy(&v, block_.get() + 4 + 2 * i, sizeof v);
    return v;
  }

  std::unique_ptr<char[]> block_;
};

}  // namespace nudge::policies
