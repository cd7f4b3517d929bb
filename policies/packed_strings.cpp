#include "policies/packed_strings.hpp"

#include <array>
#include <atomic>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace nudge::policies {

namespace {

std::array<std::atomic<const std::string*>, vocabulary::slots>& owners() {
  static std::array<std::atomic<const std::string*>, vocabulary::slots> slots{};
  return slots;
}

}  // namespace

std::optional<std::uint16_t> vocabulary::claim(std::string_view text) {
  if (text.empty() || text.size() > max_text)
    return std::nullopt;
  const std::uint16_t slot = digest(text);
  auto& owner_slot = owners()[slot];
  const std::string* owner = owner_slot.load(std::memory_order_acquire);
  if (owner == nullptr) {
    auto mine = std::make_unique<std::string>(text);
    if (owner_slot.compare_exchange_strong(owner, mine.get(), std::memory_order_acq_rel, std::memory_order_acquire))
      owner = mine.release();  // kept for the life of the process, reachable from its slot
  }
  if (*owner == text)
    return slot;
  return std::nullopt;
}

std::string_view vocabulary::text(std::uint16_t slot) noexcept {
  const std::string* owner = owners()[slot & (slots - 1)].load(std::memory_order_acquire);
  return owner ? std::string_view(*owner) : std::string_view{};
}

packed_strings::packed_strings(std::span<const std::string_view> parts, std::span<const std::uint8_t> shared) {
  if (parts.empty())
    return;
  // Each part's bytes in the block: its text, or its vocabulary slot.
  constexpr std::size_t on_stack = 32;
  std::array<std::int32_t, on_stack> slot_buf;
  std::unique_ptr<std::int32_t[]> slot_heap;
  std::int32_t* slot_of = slot_buf.data();
  if (parts.size() > on_stack) {
    slot_heap = std::make_unique_for_overwrite<std::int32_t[]>(parts.size());
    slot_of = slot_heap.get();
  }
  std::size_t text = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    slot_of[i] = -1;
    // A slot is 2 bytes: only longer texts gain by one.
    if (i < shared.size() && shared[i] && parts[i].size() > 2)
      if (auto s = vocabulary::claim(parts[i]))
        slot_of[i] = *s;
    text += slot_of[i] >= 0 ? 2 : parts[i].size();
  }
  // A record's texts come from one bounded message, far below these limits.
  if (text >= wide_bit || parts.size() >= wide_bit / 4)
    throw std::length_error("packed_strings: texts too large");
  const bool wide = text >= narrow_flag;
  const std::size_t width = wide ? 4 : 2;
  const std::uint32_t flag = wide ? wide_bit : narrow_flag;
  block_ = std::make_unique_for_overwrite<char[]>(4 + width * parts.size() + text);
  char* out = block_.get();
  const std::uint32_t head = static_cast<std::uint32_t>(parts.size()) | (wide ? wide_bit : 0);
  std::memcpy(out, &head, sizeof head);
  out += sizeof head;
  char* texts = out + width * parts.size();
  std::uint32_t end = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::uint32_t mark = 0;
    if (slot_of[i] >= 0) {
      const auto slot = static_cast<std::uint16_t>(slot_of[i]);
      std::memcpy(texts + end, &slot, sizeof slot);
      end += sizeof slot;
      mark = flag;
    } else if (!parts[i].empty()) {
      std::memcpy(texts + end, parts[i].data(), parts[i].size());
      end += static_cast<std::uint32_t>(parts[i].size());
    }
    if (wide) {
      const std::uint32_t word = end | mark;
      std::memcpy(out, &word, 4);
    } else {
      const auto narrow = static_cast<std::uint16_t>(end | mark);
      std::memcpy(out, &narrow, 2);
    }
    out += width;
  }
}

std::size_t packed_strings::block_bytes() const noexcept {
  if (!block_)
    return 0;
  const std::uint32_t head = read_u32(0);
  const std::size_t n = head & ~wide_bit;
  const bool wide = head & wide_bit;
  const std::size_t width = wide ? 4 : 2;
  return 4 + width * n + (end_of(n - 1, width) & ~(wide ? wide_bit : narrow_flag));
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
