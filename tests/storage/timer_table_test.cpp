#include <catch2/catch.hpp>

#include "storage/timer_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

using test::at_ms;

std::vector<timer_key> due_until(env& e, std::int64_t until_ms, std::size_t limit, const std::string& after = "") {
  std::error_code ec;
  auto txn = e.read();
  auto out = timer_table::due_until(txn, at_ms(until_ms), limit, after, ec);
  REQUIRE(!ec);
  return out;
}

TEST_CASE("the timer index reads entries in due order up to a time and a limit", "[storage][timers]") {
  test::temp_dir dir;
  auto e = test::open_env(test::options_for(dir.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    timer_table::put(tx, {at_ms(3000), "p-b", "abandoned_cart"});
    timer_table::put(tx, {at_ms(1000), "p-c", "abandoned_cart"});
    timer_table::put(tx, {at_ms(2000), "p-a", "winback"});
    timer_table::put(tx, {at_ms(2000), "p-a", "abandoned_cart"});
    timer_table::put(tx, {at_ms(900000), "p-d", "abandoned_cart"});
  }));
  auto all = due_until(*e, 5000, 100);
  REQUIRE(all.size() == 4);
  CHECK(all[0] == timer_key{at_ms(1000), "p-c", "abandoned_cart"});
  CHECK(all[1] == timer_key{at_ms(2000), "p-a", "abandoned_cart"});
  CHECK(all[2] == timer_key{at_ms(2000), "p-a", "winback"});
  CHECK(all[3] == timer_key{at_ms(3000), "p-b", "abandoned_cart"});

  SECTION("a limit and a continuation key page through without repeats") {
    auto first = due_until(*e, 5000, 2);
    REQUIRE(first.size() == 2);
    auto rest = due_until(*e, 5000, 10, timer_table::encode_key(first.back()));
    REQUIRE(rest.size() == 2);
    CHECK(rest[0] == all[2]);
    CHECK(rest[1] == all[3]);
  }
  SECTION("the key after a due time skips everything due by then") {
    auto later = due_until(*e, 1000000, 10, timer_table::key_after_due(at_ms(2000)));
    REQUIRE(later.size() == 2);
    CHECK(later[0] == all[3]);
    CHECK(later[1].profile_id == "p-d");
  }
  SECTION("nothing is due before the first") { CHECK(due_until(*e, 999, 10).empty()); }
}

TEST_CASE("re-arming replaces a profile's timer of that schedule, and erase removes exactly one", "[storage][timers]") {
  test::temp_dir dir;
  auto e = test::open_env(test::options_for(dir.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    timer_table::put(tx, {at_ms(1000), "p-a", "abandoned_cart"});
    timer_table::put(tx, {at_ms(4000), "p-a", "abandoned_cart"});  // re-armed
  }));
  auto all = due_until(*e, 10000, 10);
  REQUIRE(all.size() == 1);
  CHECK(all[0].due == at_ms(4000));
  bool stale = true, live = false;
  REQUIRE(!e->commit([&](write_txn& tx) {
    stale = timer_table::erase(tx, {at_ms(1000), "p-a", "abandoned_cart"});
    live = timer_table::erase(tx, {at_ms(4000), "p-a", "abandoned_cart"});
  }));
  CHECK_FALSE(stale);
  CHECK(live);
  CHECK(due_until(*e, 10000, 10).empty());
  CHECK(e->entries(e->timer_owners()) == 0);
}

TEST_CASE("erase_profile removes every timer of one profile and no other", "[storage][timers][erasure]") {
  test::temp_dir dir;
  auto e = test::open_env(test::options_for(dir.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    timer_table::put(tx, {at_ms(1000), "p-a", "abandoned_cart"});
    timer_table::put(tx, {at_ms(9000), "p-a", "winback"});
    timer_table::put(tx, {at_ms(2000), "p-ab", "abandoned_cart"});  // shares the prefix "p-a"
  }));
  std::size_t removed = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { removed = timer_table::erase_profile(tx, "p-a"); }));
  CHECK(removed == 2);
  auto left = due_until(*e, 100000, 10);
  REQUIRE(left.size() == 1);
  CHECK(left[0].profile_id == "p-ab");
  CHECK(e->entries(e->timer_owners()) == 1);
  REQUIRE(!e->commit([&](write_txn& tx) { removed = timer_table::erase_profile(tx, "p-none"); }));
  CHECK(removed == 0);
}

}  // namespace
}  // namespace nudge::storage
