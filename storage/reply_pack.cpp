#include "storage/reply_pack.hpp"

#include <array>
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

bool quoted_at(std::string_view s, std::size_t at, std::string_view text) {
  return s.size() - at >= text.size() + 2 && s[at + text.size() + 1] == '"' &&
         s.compare(at + 1, text.size(), text) == 0;
}

/// Whether `"d-` and a packable id and `"` start at `at`.
bool decision_id_at(std::string_view s, std::size_t at) {
  if (s.size() - at < decision_prefix.size() + id_chars + 1 || s.compare(at, decision_prefix.size(), decision_prefix) != 0 ||
      s[at + decision_prefix.size() + id_chars] != '"')
    return false;
  for (std::size_t i = 0; i < id_chars; ++i)
    if (crockford_values[static_cast<unsigned char>(s[at + decision_prefix.size() + i])] < 0)
      return false;
  return true;
}

void pack_id(std::string_view chars, std::string& out) {
  std::array<std::uint8_t, id_bytes> bytes{};
  std::size_t bit = 0;
  for (char c : chars) {
    const auto v = static_cast<unsigned>(crockford_values[static_cast<unsigned char>(c)]);
    for (int b = 4; b >= 0; --b, ++bit)
      if ((v >> b) & 1u)
        bytes[bit / 8] |= static_cast<std::uint8_t>(0x80u >> (bit % 8));
  }
  out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void unpack_id(std::string_view bytes, std::string& out) {
  std::size_t bit = 0;
  for (std::size_t i = 0; i < id_chars; ++i) {
    unsigned v = 0;
    for (int b = 0; b < 5; ++b, ++bit)
      v = (v << 1) | ((static_cast<unsigned char>(bytes[bit / 8]) >> (7 - bit % 8)) & 1u);
    out.push_back(crockford[v]);
  }
}

}  // namespace

bool pack_reply(std::string_view json, std::string_view message_id, std::string_view profile_id,
                std::string& out) {
  out.clear();
  out.reserve(json.size());
  std::size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    if (static_cast<unsigned char>(c) < 0x20)
      return false;
    if (c == '"') {
      if (quoted_at(json, i, message_id)) {
        out.push_back(message_token);
        i += message_id.size() + 2;
        continue;
      }
      if (quoted_at(json, i, profile_id)) {
        out.push_back(profile_token);
        i += profile_id.size() + 2;
        continue;
      }
      if (decision_id_at(json, i)) {
        out.push_back(decision_id_token);
        pack_id(json.substr(i + decision_prefix.size(), id_chars), out);
        i += decision_prefix.size() + id_chars + 1;
        continue;
      }
    } else if (c == '{' || c == ',' || c == ':') {
      const auto rest = json.substr(i);
      bool matched = false;
      for (std::size_t f = 0; f < fragments.size(); ++f)
        if (rest.starts_with(fragments[f])) {
          out.push_back(static_cast<char>(first_fragment_token + f));
          i += fragments[f].size();
          matched = true;
          break;
        }
      if (matched)
        continue;
    }
    out.push_back(c);
    ++i;
  }
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
