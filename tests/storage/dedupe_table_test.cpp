#include <catch2/catch.hpp>

#include "storage/dedupe_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t day_ms = 86'400'000;
const policies::timestamp day_start = test::at_ms(20'000 * day_ms);  // a UTC midnight
const policies::timestamp now = day_start + 1h;
constexpr std::chrono::milliseconds window = 24h;

dedupe_entry entry_at(policies::timestamp ts, std::string profile = "p-1") {
  return {ts, std::move(profile), "reply@" + std::to_string(ts.time_since_epoch().count())};
}

TEST_CASE("a dedupe key is found within the window across a day boundary",
          "[storage][dedupe]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    dedupe_table::put(tx, "web", "today", entry_at(now - 10min));
    dedupe_table::put(tx, "web", "yesterday", entry_at(now - 2h));  // previous UTC day
    dedupe_table::put(tx, "web", "edge", entry_at(now - window));   // exactly the window
    dedupe_table::put(tx, "web", "expired", entry_at(now - window - 1ms));
    dedupe_table::put(tx, "web", "old", entry_at(now - 50h));
    dedupe_table::put(tx, "helpdesk", "other-source", entry_at(now - 1min));
  }));
  auto tx = e->read();
  std::error_code ec;
  auto get = [&](std::string_view source, std::string_view id) {
    return dedupe_table::get(tx, source, id, now, window, ec);
  };
  auto today = get("web", "today");
  REQUIRE(today);
  CHECK(today->ts == now - 10min);
  CHECK(today->profile_id == "p-1");
  CHECK(today->reply == entry_at(now - 10min).reply);

  auto yesterday = get("web", "yesterday");
  REQUIRE(yesterday);
  CHECK(yesterday->ts == now - 2h);
  CHECK(get("web", "edge").has_value());
  CHECK_FALSE(get("web", "expired"));  // same bucket as "yesterday", but out of the window
  CHECK_FALSE(get("web", "old"));
  CHECK_FALSE(get("web", "other-source"));
  CHECK(get("helpdesk", "other-source").has_value());
  CHECK_FALSE(get("web", "never-seen"));
  CHECK(!ec);

  SECTION("a shorter window looks at one bucket only") {
    CHECK(dedupe_table::get(tx, "web", "today", now, 30min, ec).has_value());
    CHECK_FALSE(dedupe_table::get(tx, "web", "yesterday", now, 30min, ec));
  }
  SECTION("a longer window reaches older buckets") {
    CHECK(dedupe_table::get(tx, "web", "old", now, 72h, ec).has_value());
  }
}

TEST_CASE("drop_before removes whole days before the cutoff and nothing newer",
          "[storage][dedupe]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (int i = 0; i < 5; ++i) {
      const auto n = std::to_string(i);
      dedupe_table::put(tx, "web", "d3-" + n, entry_at(day_start - 72h + 1h * i));
      dedupe_table::put(tx, "web", "d2-" + n, entry_at(day_start - 48h + 1h * i));
      dedupe_table::put(tx, "web", "d1-" + n, entry_at(day_start - 24h + 1h * i));
      dedupe_table::put(tx, "web", "d0-" + n, entry_at(day_start + 1min * i));
    }
  }));
  const auto cutoff = now - window;  // inside day D-1: days D-3 and D-2 go

  SECTION("in bounded steps") {
    std::vector<std::size_t> steps;
    for (;;) {
      std::size_t n = 0;
      REQUIRE(!e->commit([&](write_txn& tx) { n = dedupe_table::drop_before(tx, cutoff, 4); }));
      steps.push_back(n);
      if (n < 4)
        break;
    }
    CHECK(steps == std::vector<std::size_t>{4, 4, 2});
  }
  SECTION("in one call") {
    std::size_t n = 0;
    REQUIRE(!e->commit([&](write_txn& tx) { n = dedupe_table::drop_before(tx, cutoff); }));
    CHECK(n == 10);
  }
  CHECK(e->entries(e->dedupe()) == 10);
  auto tx = e->read();
  std::error_code ec;
  CHECK(dedupe_table::get(tx, "web", "d1-0", now, 96h, ec).has_value());
  CHECK(dedupe_table::get(tx, "web", "d0-4", now, 96h, ec).has_value());
  CHECK_FALSE(dedupe_table::get(tx, "web", "d2-4", now, 96h, ec));
  CHECK_FALSE(dedupe_table::get(tx, "web", "d3-0", now, 96h, ec));
  CHECK(!ec);
}

TEST_CASE("erase_profile removes every dedupe entry naming the profile, by id and by time",
          "[storage][dedupe]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (int i = 0; i < 50; ++i) {
      const auto n = std::to_string(i);
      dedupe_table::put(tx, "web", "a-" + n, entry_at(now - 1h * i, "p-erase"));
      dedupe_table::put(tx, "web", "b-" + n, entry_at(now - 1h * i, "p-keep"));
      dedupe_table::put_by_time(tx, 7, "web", "c-" + n, entry_at(now - 1min * i, "p-erase"));
      dedupe_table::put_by_time(tx, 8, "web", "d-" + n, entry_at(now - 1min * i, "p-keep"));
    }
  }));
  std::size_t erased = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { erased = dedupe_table::erase_profile(tx, "p-erase"); }));
  CHECK(erased == 100);
  CHECK(e->entries(e->dedupe()) == 50);
  CHECK(e->entries(e->dedupe_by_time()) == 50);
  auto tx = e->read();
  std::error_code ec;
  CHECK_FALSE(dedupe_table::get(tx, "web", "a-0", now, window, ec));
  CHECK(dedupe_table::get(tx, "web", "b-0", now, window, ec).has_value());
  CHECK_FALSE(dedupe_table::get_by_time(tx, now, 7, "web", "c-0", ec));
  CHECK(dedupe_table::get_by_time(tx, now, 8, "web", "d-0", ec).has_value());
}

TEST_CASE("a reply stored by time is found by its time, hash, source and id only", "[storage][dedupe]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    dedupe_table::put_by_time(tx, 42, "web", "m-1", entry_at(now));
    dedupe_table::put_by_time(tx, 42, "web", "m-2", entry_at(now));  // same hash and time: kept apart
  }));
  auto tx = e->read();
  std::error_code ec;
  auto hit = dedupe_table::get_by_time(tx, now, 42, "web", "m-1", ec);
  REQUIRE(hit);
  CHECK(hit->reply == entry_at(now).reply);
  CHECK(dedupe_table::get_by_time(tx, now, 42, "web", "m-2", ec).has_value());
  CHECK_FALSE(dedupe_table::get_by_time(tx, now + 1ms, 42, "web", "m-1", ec));
  CHECK_FALSE(dedupe_table::get_by_time(tx, now, 43, "web", "m-1", ec));
  CHECK_FALSE(dedupe_table::get_by_time(tx, now, 42, "helpdesk", "m-1", ec));
  CHECK_FALSE(dedupe_table::get(tx, "web", "m-1", now, window, ec));  // not in the table by id
  CHECK(!ec);
}

TEST_CASE("replies stored by time in key order, out of it and again under an equal key are all found, the last one kept",
          "[storage][dedupe]") {
  // put_by_time appends after the table's last key (MDB_APPEND) and falls back to an
  // ordinary put for a key that does not sort after it.
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  const auto id = [](int i) { return "m-" + std::to_string(i); };
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (int i = 0; i < 500; ++i)  // ascending: the appends
      dedupe_table::put_by_time(tx, 7, "web", id(i), entry_at(now + 1ms * i));
  }));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (int i = 0; i < 200; ++i)  // before the last key, in a later commit
      dedupe_table::put_by_time(tx, 9, "web", id(1000 + i), entry_at(now - 1ms * i));
    // The same millisecond as the last key with a smaller hash, and the last key again.
    dedupe_table::put_by_time(tx, 1, "web", id(2000), entry_at(now + 499ms));
    dedupe_table::put_by_time(tx, 7, "web", id(499), entry_at(now + 499ms, "p-again"));
    dedupe_table::put_by_time(tx, 7, "web", id(3000), entry_at(now + 1s));  // after it all again
  }));
  auto tx = e->read();
  std::error_code ec;
  for (int i = 0; i < 500; ++i) {
    auto hit = dedupe_table::get_by_time(tx, now + 1ms * i, 7, "web", id(i), ec);
    REQUIRE(hit);
    CHECK(hit->profile_id == (i == 499 ? "p-again" : "p-1"));
  }
  for (int i = 0; i < 200; ++i)
    CHECK(dedupe_table::get_by_time(tx, now - 1ms * i, 9, "web", id(1000 + i), ec).has_value());
  CHECK(dedupe_table::get_by_time(tx, now + 499ms, 1, "web", id(2000), ec).has_value());
  CHECK(dedupe_table::get_by_time(tx, now + 1s, 7, "web", id(3000), ec).has_value());
  CHECK(!ec);
  // Those before `now`: 199 of the 200 put out of order (the first is at `now`).
  REQUIRE(!e->commit([&](write_txn& wtx) {
    CHECK(dedupe_table::drop_by_time_before(wtx, now, 10000) == 199);
  }));
}

TEST_CASE("drop_by_time_before removes the oldest replies stored by time in bounded slices", "[storage][dedupe]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (int i = 0; i < 300; ++i)
      dedupe_table::put_by_time(tx, static_cast<std::uint64_t>(300 - i), "web", "m-" + std::to_string(i),
                                entry_at(now - 1s * i));
  }));
  std::size_t first = 0;
  std::size_t second = 0;
  // Older than now - 99.5 s: i = 100..299, 200 entries.
  REQUIRE(!e->commit([&](write_txn& tx) { first = dedupe_table::drop_by_time_before(tx, now - 99500ms, 150); }));
  REQUIRE(!e->commit([&](write_txn& tx) { second = dedupe_table::drop_by_time_before(tx, now - 99500ms, 150); }));
  CHECK(first == 150);
  CHECK(second == 50);
  CHECK(e->entries(e->dedupe_by_time()) == 100);
  auto tx = e->read();
  std::error_code ec;
  CHECK(dedupe_table::get_by_time(tx, now - 99s, 300 - 99, "web", "m-99", ec).has_value());
  CHECK_FALSE(dedupe_table::get_by_time(tx, now - 100s, 300 - 100, "web", "m-100", ec));
}

}  // namespace
}  // namespace nudge::storage
