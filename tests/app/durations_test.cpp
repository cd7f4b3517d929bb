#include "app/durations.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

using nudge::app::format_duration;
using nudge::app::format_size;
using nudge::app::parse_duration;
using nudge::app::parse_size;
using std::chrono::milliseconds;

TEST_CASE("durations in every unit of the contract parse to milliseconds", "[config][app]") {
  CHECK(parse_duration("500ms") == milliseconds{500});
  CHECK(parse_duration("30s") == milliseconds{30'000});
  CHECK(parse_duration("15m") == milliseconds{900'000});
  CHECK(parse_duration("2h") == milliseconds{7'200'000});
  CHECK(parse_duration("7d") == milliseconds{604'800'000});
  CHECK(parse_duration("0s") == milliseconds{0});
  CHECK(parse_duration("0ms") == milliseconds{0});
  CHECK(parse_duration("007s") == milliseconds{7'000});
  CHECK(parse_duration("400d") == std::chrono::days{400});
}

TEST_CASE("malformed durations are refused", "[config][app]") {
  for (const char* text : {"", "s", "ms", "30", "30 s", " 30s", "30s ", "-5s", "+5s", "1.5s",
                           "5sec", "5S", "5M", "5w", "5y", "5us", "5ns", "24 hours", "1h30m",
                           "0x10s", "5mss", "d"}) {
    INFO(text);
    CHECK_FALSE(parse_duration(text).has_value());
  }
}

TEST_CASE("durations that overflow milliseconds are refused", "[config][app]") {
  constexpr auto max = std::numeric_limits<milliseconds::rep>::max();
  CHECK(parse_duration(std::to_string(max) + "ms") == milliseconds{max});
  CHECK_FALSE(parse_duration(std::to_string(max) + "0ms").has_value());
  CHECK_FALSE(parse_duration(std::to_string(max / 1000 + 1) + "s").has_value());
  CHECK(parse_duration(std::to_string(max / 86'400'000) + "d").has_value());
  CHECK_FALSE(parse_duration(std::to_string(max / 86'400'000 + 1) + "d").has_value());
  CHECK_FALSE(parse_duration("99999999999999999999999999ms").has_value());
  CHECK_FALSE(parse_duration("18446744073709551616ms").has_value());
}

TEST_CASE("durations format in the largest unit that divides them exactly", "[config][app]") {
  CHECK(format_duration(milliseconds{0}) == "0s");
  CHECK(format_duration(milliseconds{500}) == "500ms");
  CHECK(format_duration(milliseconds{1500}) == "1500ms");
  CHECK(format_duration(milliseconds{90'000}) == "90s");
  CHECK(format_duration(std::chrono::minutes{5}) == "5m");
  CHECK(format_duration(std::chrono::hours{24}) == "1d");
  CHECK(format_duration(std::chrono::hours{25}) == "25h");
  CHECK(format_duration(milliseconds{-30'000}) == "-30s");
  CHECK(format_duration(milliseconds{std::numeric_limits<milliseconds::rep>::min()}) ==
        "-9223372036854775808ms");
  for (const milliseconds::rep ms : {milliseconds::rep{0}, milliseconds::rep{1},
                                     milliseconds::rep{999}, milliseconds::rep{1000},
                                     milliseconds::rep{61'000}, milliseconds::rep{3'600'000},
                                     milliseconds::rep{86'400'000} * 400,
                                     std::numeric_limits<milliseconds::rep>::max()}) {
    INFO(ms);
    CHECK(parse_duration(format_duration(milliseconds{ms})) == milliseconds{ms});
  }
}

TEST_CASE("sizes take binary units, decimal units and plain bytes", "[config][app]") {
  CHECK(parse_size("1GiB") == (1ULL << 30));
  CHECK(parse_size("256GiB") == (256ULL << 30));
  CHECK(parse_size("512MiB") == (512ULL << 20));
  CHECK(parse_size("64KiB") == 65536U);
  CHECK(parse_size("2TiB") == (2ULL << 40));
  CHECK(parse_size("100B") == 100U);
  CHECK(parse_size("4194304") == 4194304U);
  CHECK(parse_size("0") == 0U);
  CHECK(parse_size("0B") == 0U);
  // KB/MB/GB/TB mean powers of 1000, as the units say; they are not read as KiB...
  CHECK(parse_size("1KB") == 1000U);
  CHECK(parse_size("1MB") == 1'000'000U);
  CHECK(parse_size("1GB") == 1'000'000'000U);
  CHECK(parse_size("1TB") == 1'000'000'000'000U);
}

TEST_CASE("malformed sizes are refused", "[config][app]") {
  for (const char* text : {"", "B", "GiB", "1 GiB", " 1GiB", "1GiB ", "-1", "+1", "1.5GiB",
                           "1gib", "1GIB", "1kb", "1K", "1G", "1Gi", "1PiB", "1iB", "0x10"}) {
    INFO(text);
    CHECK_FALSE(parse_size(text).has_value());
  }
}

TEST_CASE("sizes that overflow 64 bits are refused", "[config][app]") {
  CHECK(parse_size("18446744073709551615") == std::numeric_limits<std::uint64_t>::max());
  CHECK_FALSE(parse_size("18446744073709551616").has_value());
  CHECK(parse_size("16777215TiB") == (16777215ULL << 40));
  CHECK_FALSE(parse_size("16777216TiB").has_value());
  CHECK_FALSE(parse_size("18446744073709551615KiB").has_value());
}

TEST_CASE("sizes format in the largest binary unit that divides them", "[config][app]") {
  CHECK(format_size(0) == "0B");
  CHECK(format_size(1000) == "1000B");
  CHECK(format_size(65536) == "64KiB");
  CHECK(format_size(1ULL << 30) == "1GiB");
  CHECK(format_size(3ULL << 40) == "3TiB");
  CHECK(parse_size(format_size(123456789)) == 123456789U);
}
