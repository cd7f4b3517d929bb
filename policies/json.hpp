// Numbers between JSON text and doubles, both ways: parse_json() reads a document with
// every number read by std::from_chars; write_double() writes a double that JSON can
// hold.
//
// RapidJSON 1.1.0 (Debian's) reads some numbers wrongly. Its full-precision reader
// indexes past its table of powers of ten for a long significand with a large exponent
// ("1" and 40 digits, then "e300", became -4.1e-277; UBSan: diyfp.h:223, found by
// tests/fuzz/fuzz_policy_compile) and mis-read a zero with an exponent ("0e200" as
// 7.8e56). Its default reader is only approximately rounded and turns a number past
// double's range into infinity, which no writer can put back into JSON.
//
// parse_json() has the reader hand every number over as text (kParseNumbersAsStrings)
// and converts it here: an integer that fits 64 bits stays an integer (as RapidJSON
// keeps it), anything else is a correctly rounded double, a number too small for a
// double is 0 and one too large is a parse error ("number out of range"; RapidJSON's
// scanner itself refuses an exponent past 308 plus the fraction's digits, even on a
// zero). Parsing is iterative, so hostile nesting costs heap, not stack.
//
// Arithmetic on finite inputs can still leave JSON's range: a sum of event properties,
// an expected value (propensity × value × weight). RapidJSON's writer refuses infinity
// and NaN and leaves the text unfinished ({"price":}), so every computed double goes
// out through write_double(). Pure; any thread.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <cmath>
#include <charconv>
#include <limits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace nudge::policies {

/// How a parse ended: `ok()`, or an error `offset` and `message` (for a client).
struct json_parse_result {
  std::size_t offset = 0;
  std::string message;  ///< empty when the text parsed

  bool ok() const noexcept { return message.empty(); }
  /// "invalid JSON at offset N: <message>".
  std::string describe() const { return "invalid JSON at offset " + std::to_string(offset) + ": " + message; }
};

namespace detail {

/// For a JSON number that std::from_chars found outside double's range: whether it is
/// too large (its magnitude is at least 1) rather than too small.
inline bool too_large(std::string_view s) noexcept {
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  std::int64_t int_digits = 0;  // digits before the point
  std::int64_t zeros = 0;       // mantissa digits before the first non-zero one
  bool point = false;
  bool found = false;
  for (; i < s.size() && s[i] != 'e' && s[i] != 'E'; ++i) {
    if (s[i] == '.') {
      point = true;
      continue;
    }
    int_digits += point ? 0 : 1;
    found = found || s[i] != '0';
    zeros += found ? 0 : 1;
  }
  std::int64_t exp = 0;
  bool negative = false;
  if (i < s.size()) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-'))
      negative = s[i++] == '-';
    for (; i < s.size() && exp < 1'000'000'000; ++i)
      exp = exp * 10 + (s[i] - '0');
  }
  // The first non-zero digit stands for 10^(int_digits - 1 - zeros), before the exponent.
  return int_digits - 1 - zeros + (negative ? -exp : exp) >= 0;
}

/// A SAX filter between the reader and the document: numbers arrive as text.
template <typename Document>
class number_reader {
public:
  explicit number_reader(Document& doc) : doc_(doc) {}

  bool out_of_range() const noexcept { return out_of_range_; }

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(std::int64_t i) { return doc_.Int64(i); }
  bool Uint64(std::uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool StartObject() { return doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) { return doc_.EndObject(n); }
  bool StartArray() { return doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return doc_.EndArray(n); }

  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    const char* end = s + n;
    const bool integral = std::none_of(s, end, [](char c) { return c == '.' || c == 'e' || c == 'E'; });
    if (integral) {
      if (*s == '-') {
        std::int64_t i = 0;
        if (auto r = std::from_chars(s, end, i); r.ec == std::errc{} && r.ptr == end)
          return doc_.Int64(i);
      } else {
        std::uint64_t u = 0;
        if (auto r = std::from_chars(s, end, u); r.ec == std::errc{} && r.ptr == end)
          return doc_.Uint64(u);
      }
    }
    double d = 0;
    const auto r = std::from_chars(s, end, d);
    if (r.ec == std::errc::result_out_of_range) {
      if (too_large({s, n})) {
        out_of_range_ = true;
        return false;
      }
      d = *s == '-' ? -0.0 : 0.0;
    } else if (r.ec != std::errc{} || r.ptr != end) {
      return false;  // not reached: the reader passes only valid JSON numbers
    }
    return doc_.Double(d);
  }

private:
  Document& doc_;
  bool out_of_range_ = false;
};

}  // namespace detail

/// Parses `text` into `doc` (replacing what it held). The reader's stack comes from
/// `stack` when given (a reused pool), else from the heap.
template <typename Allocator, typename StackAllocator>
json_parse_result parse_json(rapidjson::GenericDocument<rapidjson::UTF8<>, Allocator, StackAllocator>& doc,
                             std::string_view text, StackAllocator* stack = nullptr) {
  using Document = rapidjson::GenericDocument<rapidjson::UTF8<>, Allocator, StackAllocator>;
  constexpr unsigned flags = rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;
  detail::number_reader<Document> filter(doc);
  rapidjson::ParseResult parsed;
  // Read from a NUL-terminated copy (one memcpy, the buffer kept per thread): a
  // StringStream reads a byte without the bounds check a MemoryStream makes at each
  // one. Both see a NUL byte as the end of the text; what follows one is refused below.
  thread_local std::string terminated;
  terminated.assign(text.data(), text.size());
  std::size_t consumed = 0;
  auto generate = [&](Document&) {  // `filter` feeds `doc`
    rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, StackAllocator> reader(stack);
    rapidjson::StringStream is(terminated.c_str());
    parsed = reader.template Parse<flags>(is, filter);
    consumed = is.Tell();
    return !parsed.IsError() && consumed == text.size();
  };
  doc.SetNull();  // and null it stays on an error: Populate assigns only what parsed
  doc.Populate(generate);
  if (terminated.capacity() > (std::size_t{1} << 16))
    std::string().swap(terminated);  // the document holds copies; a big body's room goes
  json_parse_result result;
  if (parsed.IsError()) {
    result.offset = parsed.Offset();
    result.message = filter.out_of_range() ? "number out of range"
                                           : rapidjson::GetParseError_En(parsed.Code());
  } else if (consumed != text.size()) {  // a value, then a NUL byte and more (doc stays null)
    result.offset = consumed;
    result.message = rapidjson::GetParseError_En(rapidjson::kParseErrorDocumentRootNotSingular);
  }
  return result;
}

/// Writes `d` as a JSON number: infinity as the largest finite double of its sign, NaN
/// as null (JSON has neither).
template <typename Writer>
bool write_double(Writer& w, double d) {
  if (std::isnan(d))
    return w.Null();
  if (std::isinf(d))
    d = std::copysign(std::numeric_limits<double>::max(), d);
  return w.Double(d);
}

}  // namespace nudge::policies
