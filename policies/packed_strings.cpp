#include "policies/packed_strings.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace nudge::policies {

packed_strings::packed_strings(std::span<const std::string_view> parts) {
  if (parts.empty())
    return;
  std::size_t text = 0;
  for (auto p : parts)
    text += p.size();
  // A record's texts come from one bounded message, far below these limits.
  if (text > std::numeric_limits<std::uint32_t>::max() || parts.size() >= wide_bit / 4)
    throw std::length_error("packed_strings: texts too large");
  const bool wide = text > std::numeric_limits<std::uint16_t>::max();
  const std::size_t width = wide ? 4 : 2;
  block_ = std::make_unique_for_overwrite<char[]>(4 + width * parts.size() + text);
  char* out = block_.get();
  const std::uint32_t head = static_cast<std::uint32_t>(parts.size()) | (wide ? wide_bit : 0);
  std::memcpy(out, &head, sizeof head);
  out += sizeof head;
  std::uint32_t end = 0;
  for (auto p : parts) {
    end += static_cast<std::uint32_t>(p.size());
    if (wide) {
      std::memcpy(out, &end, 4);
    } else {
      const auto narrow = static_cast<std::uint16_t>(end);
      std::memcpy(out, &narrow, 2);
    }
    out += width;
  }
  for (auto p : parts) {
    if (!p.empty())
      std::memcpy(out, p.data(), p.size());
    out += p.size();
  }
}

std::size_t packed_strings::block_bytes() const noexcept {
  if (!block_)
    return 0;
  const std::uint32_t head = read_u32(0);
  const std::size_t n = head & ~wide_bit;
  const std::size_t width = head & wide_bit ? 4 : 2;
  return 4 + width * n + end_of(n - 1, width);
}

packed_strings::packed_strings(const packed_strings& other) {
  if (const std::size_t bytes = other.block_bytes()) {
    block_ = std::make_unique_for_overwrite<char[]>(bytes);
    std::memcpy(block_.get(), other.block_.get(), bytes);
  }
}

packed_strings& packed_strings::operator=(const packed_strings& other) {
  if (this != &other)
    *this = packed_strings(other);
  return *this;
}

}  // namespace nudge::policies
