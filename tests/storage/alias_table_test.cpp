#include <catch2/catch.hpp>

#include "storage/alias_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

TEST_CASE("a merged-away id resolves to its final survivor", "[storage][alias]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    alias_table::put(tx, "p-3", "p-2");
    alias_table::put(tx, "p-2", "p-1");
  }));
  {
    auto tx = e->read();
    std::error_code ec;
    CHECK(alias_table::get(tx, "p-3") == std::string("p-2"));
    CHECK_FALSE(alias_table::get(tx, "p-1", ec));
    CHECK(!ec);
    CHECK(alias_table::resolve(tx, "p-3", ec) == "p-1");
    CHECK(alias_table::resolve(tx, "p-1", ec) == "p-1");
    CHECK(!ec);
  }
  bool erased = false;
  REQUIRE(!e->commit([&](write_txn& tx) { erased = alias_table::erase(tx, "p-2"); }));
  CHECK(erased);
  auto tx = e->read();
  std::error_code ec;
  CHECK(alias_table::resolve(tx, "p-3", ec) == "p-2");
}

TEST_CASE("an alias cycle resolves as corrupt instead of looping", "[storage][alias]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    alias_table::put(tx, "p-a", "p-b");
    alias_table::put(tx, "p-b", "p-a");
  }));
  auto tx = e->read();
  std::error_code ec;
  alias_table::resolve(tx, "p-a", ec);
  CHECK(ec == errc::corrupt);
}

TEST_CASE("erase_involving drops every alias from or to the erased ids", "[storage][alias]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    alias_table::put(tx, "p-3", "p-1");
    alias_table::put(tx, "p-4", "p-1");
    alias_table::put(tx, "p-5", "p-2");
    alias_table::put(tx, "p-6", "p-3");  // p-3 was merged into p-1 after p-6 into it
  }));
  std::size_t n = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { n = alias_table::erase_involving(tx, {"p-1", "p-3", "p-6"}); }));
  CHECK(n == 3);
  auto tx = e->read();
  CHECK_FALSE(alias_table::get(tx, "p-3"));
  CHECK_FALSE(alias_table::get(tx, "p-4"));
  CHECK_FALSE(alias_table::get(tx, "p-6"));
  CHECK(alias_table::get(tx, "p-5") == std::string("p-2"));
}

}  // namespace
}  // namespace nudge::storage
