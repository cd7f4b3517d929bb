#include "storage/reply_pack.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <cstdint>

namespace nudge::storage {
namespace {

constexpr char message_token = 0x01;
constexpr char profile_token = 0x02;
constexpr char decision_id_token = 0x03;
constexpr char first_fragment_token = 0x04;

// Stored format: append only (token 0x04 + index). API.md's replies, in the order the
// actors write them (actors/profile_actor.cpp).
constexpr std::array<std::string_view, 17> fragments = {
  R"({"type":"decision","id":)",
  R"({"type":"ack","id":)",
  R"(,"decision_id":)",
  R"(,"profile_id":)",
  R"(,"policy_version":)",
  R"(,"actions":[)",
  R"({"action":)",
  R"(,"channel":)",
  R"(,"placement":)",
  R"(,"score":)",
  R"(,"payload":)",
  R"(,"holdout":true)",
  R"(,"explain":{)",
  R"(:{"eligible":true})",
  R"(:{"eligible":false,"reason":)",
  R"(,"pointer":)",
  R"(,"purpose":)",
};
static_assert(first_fragment_token + fragments.size() <= 0x20);
// Looked up by their first four bytes (fragment_at).
static_assert(std::all_of(fragments.begin(), fragments.end(), [](std::string_view f) { return f.size() >= 4; }));

// actors/ids: a one-letter prefix, '-', 26 characters of this alphabet.
constexpr std::string_view crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::size_t id_chars = 26;
constexpr std::size_t id_bytes = 17;  // 130 bits
constexpr std::string_view decision_prefix = "\"d-";

constexpr std::array<std::int8_t, 256> crockford_values = [] {
  std::array<std::int8_t, 256> v{};
  v.fill(-1);
  for (std::size_t i = 0; i < crockford.size(); ++i)
    v[static_cast<unsigned char>(crockford[i])] = static_cast<std::int8_t>(i);
  return v;
}();

/// Whether `"` text `"` starts at `at` (where s[at] is the quote).
inline bool quoted_at(std::string_view s, std::size_t at, std::string_view text) noexcept {
  return s.size() - at >= text.size() + 2 && s[at + text.size() + 1] == '"' &&
         (text.empty() || std::memcmp(s.data() + at + 1, text.data(), text.size()) == 0);
}

// The bytes at which packing looks twice: a quote, the first bytes of fragments, and
// those it refuses.
constexpr std::array<bool, 256> special = [] {
  std::array<bool, 256> v{};
  for (std::size_t c = 0; c < 0x20; ++c)
    v[c] = true;
  for (char c : {'"', '{', ',', ':'})
    v[static_cast<unsigned char>(c)] = true;
  return v;
}();

/// The first four bytes of `p` as one number, to rule out most fragments at once.
constexpr std::uint32_t first4(const char* p) noexcept {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(p[0])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(p[1])) << 8 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(p[2])) << 16 |
         static_cast<std::uint32_t>(static_cast<unsigned char>(p[3])) << 24;
}

// Open addressing over first4(): a slot holds a fragment's index + 1 (0: empty); the
// fragments whose first four bytes are equal lie on one run of slots.
constexpr std::size_t slot_bits = 6;
constexpr std::size_t slot_of(std::uint32_t head) noexcept { return (head * 2654435761u) >> (32 - slot_bits); }

constexpr std::array<std::uint8_t, std::size_t{1} << slot_bits> fragment_slots = [] {
  std::array<std::uint8_t, std::size_t{1} << slot_bits> v{};
  for (std::size_t f = 0; f < fragments.size(); ++f) {
    auto slot = slot_of(first4(fragments[f].data()));
    while (v[slot] != 0)
      slot = (slot + 1) % v.size();
    v[slot] = static_cast<std::uint8_t>(f + 1);
  }
  return v;
}();

/// The fragment that starts at `at` (at least 4 bytes before the end), or fragments.size().
std::size_t fragment_at(std::string_view s, std::size_t at) noexcept {
  const std::uint32_t head = first4(s.data() + at);
  for (auto slot = slot_of(head); fragment_slots[slot] != 0; slot = (slot + 1) % fragment_slots.size()) {
    const std::size_t f = fragment_slots[slot] - 1u;
    if (first4(fragments[f].data()) == head && s.compare(at, fragments[f].size(), fragments[f]) == 0)
      return f;
  }
  return fragments.size();
}

/// Whether `"d-` and a packable id and `"` start at `at`.
bool decision_id_at(std::string_view s, std::size_t at) {
  if (s.size() - at < decision_prefix.size() + id_chars + 1 || s[at + 1] != 'd' || s[at + 2] != '-' ||
      s[at + decision_prefix.size() + id_chars] != '"')
    return false;
  for (std::size_t i = 0; i < id_chars; ++i)
    if (crockford_values[static_cast<unsigned char>(s[at + decision_prefix.size() + i])] < 0)
      return false;
  return true;
}

// Eight characters are 40 bits, five whole bytes: three groups, then the last two
// characters' 10 bits, padded to two bytes.
char* pack_id(const char* chars, char* bytes) {
  auto group = [&](std::size_t first, std::size_t count, std::size_t byte, std::size_t byte_count) {
    std::uint64_t bits = 0;
    for (std::size_t i = first; i < first + count; ++i)
      bits = bits << 5 | static_cast<std::uint64_t>(crockford_values[static_cast<unsigned char>(chars[i])]);
    bits <<= byte_count * 8 - count * 5;
    for (std::size_t b = byte_count; b-- > 0; bits >>= 8)
      bytes[byte + b] = static_cast<char>(bits & 0xff);
  };
  group(0, 8, 0, 5);
  group(8, 8, 5, 5);
  group(16, 8, 10, 5);
  group(24, 2, 15, 2);
  return bytes + id_bytes;
}

void unpack_id(std::string_view bytes, std::string& out) {
  auto group = [&](std::size_t count, std::size_t byte, std::size_t byte_count) {
    std::uint64_t bits = 0;
    for (std::size_t b = 0; b < byte_count; ++b)
      bits = bits << 8 | static_cast<unsigned char>(bytes[byte + b]);
    bits >>= byte_count * 8 - count * 5;
    for (std::size_t i = count; i-- > 0;)
      out.push_back(crockford[(bits >> (5 * i)) & 31u]);
  };
  group(8, 0, 5);
  group(8, 5, 5);
  group(8, 10, 5);
  group(2, 15, 2);
}

}  // namespace

bool pack_reply(std::string_view json, std::string_view message_id, std::string_view profile_id,
                std::string& out) {
  // Written through a pointer into room for the whole text: every token stands for at
  // least as many bytes as it takes (a quoted id for 1 byte, a decision id's 30 for 18,
  // a fragment's 4 or more for 1), so the packed text is never the longer. Before,
  // byte-wise appends and out-of-line checks cost ~15 instructions a byte.
  const std::size_t n = json.size();
  const char* const s = json.data();
  out.resize(n);
  char* const begin = out.data();
  char* o = begin;
  std::size_t i = 0;
  while (i < n) {
    // Runs between specials are a few bytes: copied as they are scanned, not by a call.
    while (i < n && !special[static_cast<unsigned char>(s[i])])
      *o++ = s[i++];
    if (i == n)
      break;
    const char c = s[i];
    if (static_cast<unsigned char>(c) < 0x20)
      return false;
    if (c == '"') {
      if (quoted_at(json, i, message_id)) {
        *o++ = message_token;
        i += message_id.size() + 2;
        continue;
      }
      if (quoted_at(json, i, profile_id)) {
        *o++ = profile_token;
        i += profile_id.size() + 2;
        continue;
      }
      if (decision_id_at(json, i)) {
        *o++ = decision_id_token;
        o = pack_id(s + i + decision_prefix.size(), o);
        i += decision_prefix.size() + id_chars + 1;
        continue;
      }
    } else if (n - i >= 4) {
      if (const auto f = fragment_at(json, i); f < fragments.size()) {
        *o++ = static_cast<char>(first_fragment_token + f);
        i += fragments[f].size();
        continue;
      }
    }
    *o++ = c;
    ++i;
  }
  out.resize(static_cast<std::size_t>(o - begin));
  return true;
}

bool unpack_reply(std::string_view packed, std::string_view message_id, std::string_view profile_id,
                  std::string& out) {
  out.clear();
  out.reserve(packed.size() * 3);
  for (std::size_t i = 0; i < packed.size(); ++i) {
    const char c = packed[i];
    if (static_cast<unsigned char>(c) >= 0x20) {
      out.push_back(c);
    } else if (c == message_token || c == profile_token) {
      out.push_back('"');
      out.append(c == message_token ? message_id : profile_id);
      out.push_back('"');
    } else if (c == decision_id_token) {
      if (packed.size() - i - 1 < id_bytes)
        return false;
      out.append(decision_prefix);
      unpack_id(packed.substr(i + 1, id_bytes), out);
      out.push_back('"');
      i += id_bytes;
    } else {
      const auto f = static_cast<std::size_t>(c - first_fragment_token);
      if (c < first_fragment_token || f >= fragments.size())
        return false;
      out.append(fragments[f]);
    }
  }
  return true;
}

}  // namespace nudge::storage
