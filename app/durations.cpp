#include "app/durations.hpp"

#include <array>
#include <limits>
#include <utility>

namespace nudge::app {
namespace {

/// Leading decimal digits of `text` as an unsigned value; nullopt when there are none
/// or they overflow. `rest` receives what follows them.
std::optional<std::uint64_t> leading_number(std::string_view text, std::string_view& rest) {
  std::size_t i = 0;
  std::uint64_t value = 0;
  constexpr auto max = std::numeric_limits<std::uint64_t>::max();
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  if (i == 0) return std::nullopt;
  rest = text.substr(i);
  return value;
}

using ms_rep = std::chrono::milliseconds::rep;

constexpr std::array<std::pair<std::string_view, ms_rep>, 5> duration_units{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

constexpr std::array<std::pair<std::string_view, std::uint64_t>, 9> size_units{{
    {"TiB", 1ULL << 40},
    {"GiB", 1ULL << 30},
    {"MiB", 1ULL << 20},
    {"KiB", 1ULL << 10},
    {"TB", 1'000'000'000'000ULL},
    {"GB", 1'000'000'000ULL},
    {"MB", 1'000'000ULL},
    {"KB", 1'000ULL},
    {"B", 1},
}};

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::string_view unit;
  const auto number = leading_number(text, unit);
  if (!number) return std::nullopt;
  for (const auto& [name, factor] : duration_units) {
    if (unit != name) continue;
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<ms_rep>::max());
    if (*number > max / static_cast<std::uint64_t>(factor)) return std::nullopt;
    return std::chrono::milliseconds{static_cast<ms_rep>(*number) * factor};
  }
  return std::nullopt;
}

std::string format_duration(std::chrono::milliseconds d) {
  const ms_rep count = d.count();
  if (count == 0) return "0s";
  // Negative values never come from parse_duration; print them readably anyway.
  // The magnitude of the minimum rep does not fit the rep, so work unsigned.
  std::uint64_t magnitude = count < 0 ? 0 - static_cast<std::uint64_t>(count)
                                      : static_cast<std::uint64_t>(count);
  std::string out = count < 0 ? "-" : "";
  for (const auto& [name, factor] : duration_units) {
    const auto f = static_cast<std::uint64_t>(factor);
    if (magnitude % f == 0) return out + std::to_string(magnitude / f) + std::string(name);
  }
  return out + std::to_string(magnitude) + "ms";  // unreachable: factor 1 divides all
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::string_view unit;
  const auto number = leading_number(text, unit);
  if (!number) return std::nullopt;
  if (unit.empty()) return number;
  for (const auto& [name, factor] : size_units) {
    if (unit != name) continue;
    if (*number > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;
    return *number * factor;
  }
  return std::nullopt;
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0B";
  for (const auto& [name, factor] : size_units) {
    // Only binary units: a printed "1GB" would be misread as GiB by half the readers.
    if (name.size() != 3 && name != "B") continue;
    if (bytes % factor == 0) return std::to_string(bytes / factor) + std::string(name);
  }
  return std::to_string(bytes) + "B";
}

}  // namespace nudge::app
