// Durations and byte sizes as written in the config file and the contract.
//
// Durations: a non-negative decimal integer immediately followed by one unit,
// "500ms", "30s", "15m", "2h", "7d" (a day is 24 h). Sizes: a non-negative decimal
// integer, optionally followed by a unit: "100B", "64KiB", "512MiB", "1GiB", "2TiB"
// (powers of 1024) or "64KB", "512MB", "1GB", "2TB" (powers of 1000, as the SI and
// IEC define them; "1GB" is not read as GiB). Plain digits are bytes.
// Both are strict: no sign, no spaces, no fractions, no other or lowercase-mismatched
// units, and nothing that overflows the result type. All functions are pure and
// thread-safe; none throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nudge::app {

/// "30s" -> 30000 ms; nullopt for anything that is not exactly <digits><unit>.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// The shortest exact form in the largest unit that divides `d`: 90000 ms -> "90s",
/// 86400000 ms -> "1d", 0 -> "0s". parse_duration(format_duration(d)) == d for d >= 0.
std::string format_duration(std::chrono::milliseconds d);

/// "1GiB" -> 1073741824, "1GB" -> 1000000000, "4096" -> 4096; nullopt when malformed
/// or above 2^64 - 1.
std::optional<std::uint64_t> parse_size(std::string_view text);

/// The shortest exact binary form: 65536 -> "64KiB", 1000 -> "1000B".
std::string format_size(std::uint64_t bytes);

}  // namespace nudge::app
