// A RapidJSON writer onto a StringBuffer that copies a text needing no escape in one
// piece. RapidJSON's WriteString looks up every byte in its escape table, checks the
// stream's room and puts it alone (about ten instructions a byte; its SSE2 path only
// takes texts of 16 bytes and more); a reply's keys and values are mostly short and
// plain, and writing them was ~3,500 instructions per decision reply, 4.6% of a
// message (docs/BENCHMARKS.md, "Replies written and packed in pieces").
//
// The output is byte for byte what rapidjson::Writer writes: a text that holds a byte
// JSON escapes (below 0x20, '"', '\\') goes through the base writer, and the base copies
// every other byte as it is (UTF-8 to UTF-8 without kWriteValidateEncodingFlag).
// Functions that take a rapidjson::Writer<StringBuffer>& accept this one and write
// through the base's members.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <string_view>

namespace nudge::policies {

class json_writer : public rapidjson::Writer<rapidjson::StringBuffer> {
public:
  using base = rapidjson::Writer<rapidjson::StringBuffer>;
  using base::base;

  bool String(const char* s, rapidjson::SizeType n, bool copy = false) { return text(s, n, copy); }
  /// Also takes a std::string.
  bool String(std::string_view s) { return text(s.data(), static_cast<rapidjson::SizeType>(s.size()), false); }
  /// A NUL-terminated text (a literal's length folds at compile time).
  bool String(const char* s) { return text(s, static_cast<rapidjson::SizeType>(std::strlen(s)), false); }

  bool Key(const char* s, rapidjson::SizeType n, bool copy = false) { return text(s, n, copy); }
  bool Key(std::string_view s) { return text(s.data(), static_cast<rapidjson::SizeType>(s.size()), false); }
  bool Key(const char* s) { return text(s, static_cast<rapidjson::SizeType>(std::strlen(s)), false); }

  /// Whether JSON writes `s` as it is between quotes.
  static bool plain(const char* s, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i)
      if (escaped[static_cast<unsigned char>(s[i])])
        return false;
    return true;
  }

private:
  static constexpr std::array<bool, 256> escaped = [] {
    std::array<bool, 256> v{};
    for (std::size_t c = 0; c < 0x20; ++c)
      v[c] = true;
    v['"'] = true;
    v['\\'] = true;
    return v;
  }();

  bool text(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    Prefix(rapidjson::kStringType);
    // Copied as it is checked; at the first byte JSON escapes, the copy is taken back
    // and the base writes the whole text.
    char* out = os_->Push(std::size_t{n} + 2);
    out[0] = '"';
    for (rapidjson::SizeType i = 0; i < n; ++i) {
      const char c = s[i];
      if (escaped[static_cast<unsigned char>(c)]) {
        os_->Pop(std::size_t{n} + 2);
        return EndValue(WriteString(s, n));
      }
      out[i + 1] = c;
    }
    out[n + 1] = '"';
    return EndValue(true);
  }
};

}  // namespace nudge::policies
