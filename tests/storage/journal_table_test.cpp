#include <catch2/catch.hpp>

#include <lmdb.h>

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/journal_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

using position_list = std::vector<std::uint64_t>;

struct seen {
  std::uint64_t position;
  std::string profile;
  std::uint64_t seq;
  bool operator==(const seen&) const = default;
};

std::vector<seen> scan_all(env& e) {
  std::vector<seen> out;
  auto tx = e.read();
  std::error_code ec;
  journal_table::scan(tx, [&](const journal_table::entry_header& h) {
    out.push_back({h.position, std::string(h.profile_id), h.seq});
    return true;
  }, ec);
  REQUIRE(!ec);
  return out;
}

TEST_CASE("journal entries append by position and read back by position and profile", "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  {
    auto tx = e->read();
    std::error_code ec;
    CHECK(journal_table::next_position(tx, ec) == 1);
    CHECK(!ec);
  }
  // Positions cross byte boundaries (255/256) to catch little-endian or text order;
  // "p-1" is a prefix of "p-10".
  REQUIRE(!e->commit([&](write_txn& tx) {
    CHECK(journal_table::next_position(tx) == 1);
    for (std::uint64_t p = 1; p <= 300; ++p)
      journal_table::append(tx, p, p % 2 ? "p-1" : "p-10", test::sample_entry(p, p % 2 ? "/p-1" : "/p-10"));
  }));
  auto tx = e->read();
  std::error_code ec;
  CHECK(journal_table::next_position(tx, ec) == 301);
  auto got = journal_table::get(tx, 255, "p-1", ec);
  REQUIRE(got);
  CHECK(!ec);
  CHECK(got->seq == 255);
  CHECK(test::same(*got, test::sample_entry(255, "/p-1")));
  // Another profile's position, or none, reads as nothing.
  CHECK(!journal_table::get(tx, 256, "p-1", ec));
  CHECK(!ec);
  CHECK(journal_table::get(tx, 256, "p-10", ec));
  CHECK(!journal_table::get(tx, 301, "p-10", ec));
  CHECK(!ec);
  CHECK(journal_table::positions_of(tx, "p-10", ec).size() == 150);
  CHECK(journal_table::positions_of(tx, "p-1", ec).front() == 1);
  CHECK(journal_table::positions_of(tx, "p-", ec).empty());
}

TEST_CASE("scan shows every entry with position and profile and seq in order and can stop", "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    journal_table::append(tx, 7, "b", test::sample_entry(70000));
    journal_table::append(tx, 256, "a", test::sample_entry(1));
    journal_table::append(tx, 257, "", test::sample_entry(2));
  }));
  CHECK(scan_all(*e) == std::vector<seen>{{7, "b", 70000}, {256, "a", 1}, {257, "", 2}});
  auto tx = e->read();
  std::error_code ec;
  int calls = 0;
  journal_table::scan(tx, [&](const journal_table::entry_header&) { return ++calls < 2; }, ec);
  CHECK(calls == 2);
}

TEST_CASE("an append below the last position fails its commit and changes nothing", "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) { journal_table::append(tx, 10, "p", test::sample_entry(1)); }));
  auto ec = e->commit([&](write_txn& tx) {
    journal_table::append(tx, 11, "p", test::sample_entry(2));
    journal_table::append(tx, 10, "p", test::sample_entry(3));
  });
  CHECK(ec);
  CHECK(scan_all(*e) == std::vector<seen>{{10, "p", 1}});
}

TEST_CASE("drop_before deletes the oldest entries in bounded slices", "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (std::uint64_t p = 1; p <= 3000; ++p)
      journal_table::append(tx, p, p % 3 ? "p-a" : "p-b", test::sample_entry(p));
  }));
  std::size_t first = 0;
  std::size_t second = 0;
  std::size_t none = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { first = journal_table::drop_before(tx, 2501, 2000); }));
  REQUIRE(!e->commit([&](write_txn& tx) { second = journal_table::drop_before(tx, 2501, 2000); }));
  REQUIRE(!e->commit([&](write_txn& tx) { none = journal_table::drop_before(tx, 2501, 2000); }));
  CHECK(first == 2000);
  CHECK(second == 500);
  CHECK(none == 0);
  auto rest = scan_all(*e);
  REQUIRE(rest.size() == 500);
  CHECK(rest.front().position == 2501);
  CHECK(rest.back().position == 3000);
  // The next position still follows the last one stored.
  auto tx = e->read();
  std::error_code ec;
  CHECK(journal_table::next_position(tx, ec) == 3001);
}

TEST_CASE("drop_except deletes the entries of a range not kept in bounded slices and says where to go on",
          "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (std::uint64_t p = 1; p <= 100; ++p)
      journal_table::append(tx, p, "p-" + std::to_string(p % 7), test::sample_entry(p));
  }));
  // Keep 10, 11, 50 and 99; 5 and 100 lie outside [from, below) and stay anyway.
  const std::vector<std::uint64_t> keep{10, 11, 50, 99};
  std::uint64_t from = 6;
  std::size_t first = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { first = journal_table::drop_except(tx, from, 100, keep, 40); }));
  CHECK(first == 40);
  CHECK(from == 48);  // 6-9, 12-47 deleted: 4 + 36
  std::size_t second = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { second = journal_table::drop_except(tx, from, 100, keep, 40); }));
  CHECK(second == 40);  // 48, 49, 51-88
  CHECK(from == 89);
  std::size_t third = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { third = journal_table::drop_except(tx, from, 100, keep, 40); }));
  CHECK(third == 10);  // 89-98
  CHECK(from == 100);
  std::vector<std::uint64_t> rest;
  for (const auto& r : scan_all(*e))
    rest.push_back(r.position);
  std::vector<std::uint64_t> expected{1, 2, 3, 4, 5, 10, 11, 50, 99, 100};
  CHECK(rest == expected);
  // Nothing left to drop: none deleted, and the range is done.
  std::size_t none = 1;
  from = 1;
  REQUIRE(!e->commit([&](write_txn& tx) { none = journal_table::drop_except(tx, from, 6, {}, 40); }));
  CHECK(none == 5);
  CHECK(from == 6);
  REQUIRE(!e->commit([&](write_txn& tx) { none = journal_table::drop_except(tx, from, 6, {}, 40); }));
  CHECK(none == 0);
}

TEST_CASE("erase_profiles deletes exactly the named profiles' entries", "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (std::uint64_t p = 1; p <= 30; ++p)
      journal_table::append(tx, p, "p-" + std::to_string(p % 3), test::sample_entry(p));
  }));
  std::size_t erased = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { erased = journal_table::erase_profiles(tx, {"p-1", "p-2", "p-9"}); }));
  CHECK(erased == 20);
  auto rest = scan_all(*e);
  REQUIRE(rest.size() == 10);
  for (const auto& r : rest)
    CHECK(r.profile == "p-0");
}

TEST_CASE("a journal in the profile-keyed layout moves to the log when the environment opens",
          "[storage][journal]") {
  test::temp_dir tmp;
  {
    auto e = test::open_env(test::options_for(tmp.path()));
    // The earlier layout: key profile + '\0' + big-endian seq, value the entry.
    REQUIRE(!e->commit([&](write_txn& tx) {
      MDB_dbi old = 0;
      REQUIRE(mdb_dbi_open(tx.get(), "journal", MDB_CREATE, &old) == MDB_SUCCESS);
      auto put_old = [&](std::string_view profile, std::uint64_t seq) {
        std::string key(profile);
        key.push_back('\0');
        detail::append_be64(key, seq);
        msgpack::sbuffer value;
        encode(test::sample_entry(seq), value);
        detail::put(tx, old, key, std::string_view(value.data(), value.size()));
      };
      put_old("p-1", 3);
      put_old("p-1", 256);
      put_old("p-0", 9);
      detail::put(tx, old, "not-an-entry", "x");
      journal_table::append(tx, 5, "p-new", test::sample_entry(1));
    }));
  }
  auto e = test::open_env(test::options_for(tmp.path()));
  // Old entries follow the log's own, in the old key order; the rest of the old table goes.
  CHECK(scan_all(*e) == std::vector<seen>{{5, "p-new", 1}, {6, "p-0", 9}, {7, "p-1", 3}, {8, "p-1", 256}});
  auto tx = e->read();
  std::error_code ec;
  auto moved = journal_table::get(tx, 8, "p-1", ec);
  REQUIRE(moved);
  CHECK(test::same(*moved, test::sample_entry(256)));
  MDB_dbi old = 0;
  REQUIRE(mdb_dbi_open(tx.get(), "journal", 0, &old) == MDB_SUCCESS);
  CHECK(e->entries(old) == 0);
}

}  // namespace
}  // namespace nudge::storage
