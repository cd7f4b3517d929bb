// A short, immutable list of strings kept in one heap block. Profiles keep tens of
// records with several short texts each; one block per record, instead of a 32-byte
// std::string per text plus a heap block for each longer one, is most of what keeps an
// active profile small (docs/BENCHMARKS.md, scenario 3). The texts that recur across
// records (event names, channels, property paths, action ids, policy versions,
// purposes) are kept once per process in the vocabulary below and referred to by a
// 2-byte slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace nudge::policies {

/// The process-wide vocabulary: one slot per 15-bit digest of a text (FNV-1a, folded),
/// claimed by the first text of at most max_text bytes that asks for it and kept with
/// that text until exit. So it holds at most 32,768 texts (~3 MB), whatever a client
/// sends; a text whose slot another owns is simply not in it. Lock-free; any thread.
class vocabulary {
public:
  static constexpr std::size_t slots = std::size_t{1} << 15;
  static constexpr std::size_t max_text = 64;

  /// The 15-bit digest of `text`: its slot, owned by it or not.
  static constexpr std::uint16_t digest(std::string_view text) noexcept {
    std::uint32_t h = 2166136261u;
    for (char c : text)
      h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    return static_cast<std::uint16_t>((h ^ (h >> 16)) & 0x7fff);
  }
  /// The slot that `text` owns, claiming it when free; none when another text owns it,
  /// or when `text` is empty or longer than max_text.
  static std::optional<std::uint16_t> claim(std::string_view text);
  /// The text that owns `slot` (a slot claim() returned). Valid until exit.
  static std::string_view text(std::uint16_t slot) noexcept;
};

/// Layout of the block: a 32-bit word with the count (bit 31 set when offsets are 32
/// bits wide, that is when the texts exceed 32 KiB), the end offset of each string
/// (from the start of the texts; 16 bits wide otherwise) with its top bit set when the
/// string is a vocabulary slot, then the texts back to back (a slot as 2 bytes). An
/// empty list holds no block. Copies copy the block; moves take it. Not synchronised:
/// one owner at a time.
class packed_strings {
public:
  packed_strings() = default;
  explicit packed_strings(std::span<const std::string_view> parts) : packed_strings(parts, {}) {}
  /// The same, keeping parts[i] as a vocabulary slot where `shared[i]` is non-zero and
  /// the vocabulary has (or takes) it: for texts that recur across records.
  packed_strings(std::span<const std::string_view> parts, std::span<const std::uint8_t> shared);
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
    const bool wide = head & wide_bit;
    const std::size_t width = wide ? 4 : 2;
    const std::uint32_t flag = wide ? wide_bit : narrow_flag;
    const std::uint32_t begin = i == 0 ? 0 : end_of(i - 1, width) & ~flag;
    const std::uint32_t end = end_of(i, width);
    const char* at = block_.get() + 4 + width * n + begin;
    if (end & flag) {
      std::uint16_t slot;
      __builtin_memcpy(&slot, at, sizeof slot);
      return vocabulary::text(slot);
    }
    return {at, end - begin};
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
  static constexpr std::uint32_t narrow_flag = 0x8000u;

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
