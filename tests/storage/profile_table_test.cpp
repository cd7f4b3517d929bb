#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include "storage/detail/lmdb_ops.hpp"
#include "storage/profile_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

/// The snapshot stored under `id` reads back with `seq` and `state`.
void check_stored(read_txn& tx, std::string_view id, std::uint64_t seq, const policies::profile_state& state) {
  std::error_code ec;
  auto snap = profile_table::get(tx, id, ec);
  REQUIRE(!ec);
  REQUIRE(snap);
  CHECK(snap->seq == seq);
  CHECK(test::same(snap->state, state));
}

TEST_CASE("a profile snapshot is stored, replaced, counted and erased", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  std::error_code ec;
  {
    auto tx = e->read();
    CHECK_FALSE(profile_table::get(tx, "p-1", ec));
    CHECK(!ec);
    CHECK(profile_table::count(tx) == 0);
  }
  REQUIRE(!e->commit([](write_txn& tx) {
    profile_table::put(tx, {test::full_profile("p-1"), 3});
    profile_table::put(tx, {test::full_profile("p-2"), 4});
  }));
  {
    auto tx = e->read();
    check_stored(tx, "p-1", 3, test::full_profile("p-1"));
    CHECK(profile_table::count(tx) == 2);
  }
  auto changed = test::full_profile("p-1");
  changed.traits.clear();
  changed.history.erase(changed.history.begin());
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put(tx, {changed, 9}); }));
  {
    auto tx = e->read();
    auto snap = profile_table::get(tx, "p-1", ec);
    REQUIRE(snap);
    CHECK(snap->seq == 9);
    CHECK(test::same(snap->state, changed));
  }
  bool erased = false, erased_again = true;
  REQUIRE(!e->commit([&](write_txn& tx) {
    erased = profile_table::erase(tx, "p-1");
    erased_again = profile_table::erase(tx, "p-1");
  }));
  CHECK(erased);
  CHECK_FALSE(erased_again);
  auto tx = e->read();
  CHECK_FALSE(profile_table::get(tx, "p-1", ec));
  CHECK(profile_table::count(tx) == 1);
}

TEST_CASE("a snapshot encoded ahead of the commit is stored as put() stores it", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  const auto state = test::full_profile("p-1");
  const std::string bytes = profile_table::encode(state, 7);
  REQUIRE_FALSE(bytes.empty());
  REQUIRE(!e->commit([&](write_txn& tx) {
    profile_table::put_encoded(tx, "p-1", bytes);
    profile_table::put(tx, {state, 7});
    profile_table::put_encoded(tx, "p-3", profile_table::encode(test::full_profile("p-3"), 2));
  }));
  auto tx = e->read();
  std::error_code ec;
  // put() wrote the same key after put_encoded(): the stored bytes are identical.
  auto stored = detail::get(tx, tx.environment().profiles(), "p-1", ec);
  REQUIRE(stored);
  CHECK(std::string(static_cast<const char*>(stored->mv_data), stored->mv_size) == bytes);
  check_stored(tx, "p-3", 2, test::full_profile("p-3"));
  CHECK(profile_table::count(tx) == 2);
}

TEST_CASE("an undecodable stored profile reads as corrupt", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    detail::put(tx, e->profiles(), "p-bad", "\x93\x01garbage");
  }));
  auto tx = e->read();
  std::error_code ec;
  CHECK_FALSE(profile_table::get(tx, "p-bad", ec));
  CHECK(ec == errc::corrupt);
}

TEST_CASE("profile ids can be paged in key order", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    for (const char* id : {"p-3", "p-1", "p-2", "p-10"}) {
      profile_snapshot s;
      s.state.id = id;
      profile_table::put(tx, s);
    }
  }));
  auto tx = e->read();
  std::error_code ec;
  CHECK(profile_table::ids_after(tx, "", 2, ec) == std::vector<std::string>{"p-1", "p-10"});
  CHECK(profile_table::ids_after(tx, "p-10", 10, ec) == std::vector<std::string>{"p-2", "p-3"});
  CHECK(profile_table::ids_after(tx, "p-15", 10, ec) == std::vector<std::string>{"p-2", "p-3"});
  CHECK(profile_table::ids_after(tx, "p-3", 10, ec).empty());
  CHECK(!ec);
}

TEST_CASE("an empty read transaction reports txn_failed", "[storage][profile]") {
  read_txn empty;
  std::error_code ec;
  CHECK_FALSE(profile_table::get(empty, "p-1", ec));
  CHECK(ec == errc::txn_failed);
  CHECK(profile_table::count(empty) == 0);
}

}  // namespace
}  // namespace nudge::storage
