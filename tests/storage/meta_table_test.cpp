#include <catch2/catch.hpp>

#include "storage/meta_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

TEST_CASE("meta values are stored, replaced and erased", "[storage][meta]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  const std::string binary("a\0b\xff", 4);
  REQUIRE(!e->commit([&](write_txn& tx) {
    meta_table::put(tx, "policy", "v1");
    meta_table::put(tx, "counter", binary);
    meta_table::put(tx, "policy", "v2");
  }));
  {
    auto tx = e->read();
    std::error_code ec;
    CHECK(meta_table::get(tx, "policy", ec) == std::string("v2"));
    CHECK(meta_table::get(tx, "counter") == binary);
    CHECK_FALSE(meta_table::get(tx, "missing", ec));
    CHECK(!ec);
  }
  bool erased = false;
  REQUIRE(!e->commit([&](write_txn& tx) { erased = meta_table::erase(tx, "policy"); }));
  CHECK(erased);
  auto tx = e->read();
  CHECK_FALSE(meta_table::get(tx, "policy"));
}

}  // namespace
}  // namespace nudge::storage
