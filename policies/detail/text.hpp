// Small text helpers shared by the compiler and the engine: durations as written in
// policies, JSON pointer segments, and the stable hash used for the holdout group.
#pragma once

#include "policies/splitmix64.hpp"
#include "policies/profile.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nudge::policies::detail {

using policies::splitmix64;


/// Parses "<digits><unit>" with unit one of ms, s, m, h, d ("500ms", "7d").
/// Returns nullopt for anything else, including values that would overflow.
inline std::optional<duration> parse_duration(std::string_view text) noexcept {
  std::size_t i = 0;
  std::int64_t n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    n = n * 10 + (text[i] - '0');
    if (n > 10'000'000'000LL)  // 1e10 days still fits in int64 milliseconds
      return std::nullopt;
    ++i;
  }
  if (i == 0)
    return std::nullopt;
  const std::string_view unit = text.substr(i);
  std::int64_t ms_per_unit = 0;
  if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "s")
    ms_per_unit = 1000;
  else if (unit == "m")
    ms_per_unit = 60'000;
  else if (unit == "h")
    ms_per_unit = 3'600'000;
  else if (unit == "d")
    ms_per_unit = 86'400'000;
  else
    return std::nullopt;
  return duration{n * ms_per_unit};
}

/// Appends one reference token to a JSON pointer, escaping '~' and '/' (RFC 6901).
inline std::string pointer_append(std::string_view base, std::string_view token) {
  std::string out;
  out.reserve(base.size() + token.size() + 1);
  out.append(base);
  out.push_back('/');
  for (char c : token) {
    if (c == '~')
      out.append("~0");
    else if (c == '/')
      out.append("~1");
    else
      out.push_back(c);
  }
  return out;
}

inline std::string pointer_append(std::string_view base, std::size_t index) {
  std::string out(base);
  out.push_back('/');
  out.append(std::to_string(index));
  return out;
}

/// FNV-1a 64 of `a` + "|" + `b`, finished with splitmix64's mixer, mapped to [0, 1).
/// Stable across builds and hosts. FNV-1a alone moves the top bits (which decide a
/// share such as a 5% holdout) little for the last bytes it reads: salts "2026-q4" and
/// "2026-q5" put the same profiles in the control group. The mixer spreads every input
/// bit over all 64.
inline double stable_unit(std::string_view a, std::string_view b) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto feed = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  };
  feed(a);
  feed("|");
  feed(b);
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

}  // namespace nudge::policies::detail
