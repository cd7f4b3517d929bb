#include <catch2/catch.hpp>

#include "storage/identity_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

TEST_CASE("an identity points at one profile until it is moved or erased",
          "[storage][identity]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  const policies::identity device{"device_id", "ios-5521"};
  const policies::identity email{"email", "sha256:9f2c"};
  // Same bytes split differently between type and value must not collide.
  const policies::identity tricky_a{"a", "bc"};
  const policies::identity tricky_b{"ab", "c"};

  REQUIRE(!e->commit([&](write_txn& tx) {
    identity_table::put(tx, device, "p-1");
    identity_table::put(tx, email, "p-1");
    identity_table::put(tx, tricky_a, "p-a");
    identity_table::put(tx, tricky_b, "p-b");
  }));
  {
    auto tx = e->read();
    std::error_code ec;
    CHECK(identity_table::get(tx, device, ec) == std::string("p-1"));
    CHECK(!ec);
    CHECK(identity_table::get(tx, email) == std::string("p-1"));
    CHECK(identity_table::get(tx, tricky_a) == std::string("p-a"));
    CHECK(identity_table::get(tx, tricky_b) == std::string("p-b"));
    CHECK_FALSE(identity_table::get(tx, {"device_id", "ios-5522"}, ec));
    CHECK(!ec);
    CHECK_FALSE(identity_table::get(tx, {"user_id", "ios-5521"}));
  }
  bool erased = false, erased_again = true;
  REQUIRE(!e->commit([&](write_txn& tx) {
    identity_table::put(tx, device, "p-2");  // a merge moves it
    erased = identity_table::erase(tx, email);
    erased_again = identity_table::erase(tx, email);
  }));
  CHECK(erased);
  CHECK_FALSE(erased_again);
  auto tx = e->read();
  CHECK(identity_table::get(tx, device) == std::string("p-2"));
  CHECK_FALSE(identity_table::get(tx, email));
  CHECK(e->entries(e->identities()) == 3);
}

TEST_CASE("the members table lists a profile's identities and follows moves and erasure",
          "[storage][identity]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  const policies::identity device{"device_id", "ios-5521"};
  const policies::identity user{"user_id", "u-1"};
  const policies::identity other{"user_id", "u-2"};
  auto members_of = [&](std::string_view pid) {
    auto tx = e->read();
    std::error_code ec;
    auto ids = identity_table::members(tx, pid, ec);
    REQUIRE(!ec);
    return ids;
  };
  REQUIRE(!e->commit([&](write_txn& tx) {
    identity_table::put(tx, device, "p-1");
    identity_table::put(tx, user, "p-1");
    identity_table::put(tx, other, "p-10");  // "p-1" is a prefix of "p-10": must not mix
  }));
  CHECK(members_of("p-1") == std::vector<policies::identity>{device, user});
  CHECK(members_of("p-10") == std::vector<policies::identity>{other});
  CHECK(members_of("p-2").empty());

  std::size_t moved = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { moved = identity_table::move_all(tx, "p-10", "p-1"); }));
  CHECK(moved == 1);
  CHECK(members_of("p-10").empty());
  CHECK(members_of("p-1") == std::vector<policies::identity>{device, user, other});
  {
    auto tx = e->read();
    CHECK(identity_table::get(tx, other) == std::string("p-1"));
  }
  // Re-pointing one identity moves its member row too.
  REQUIRE(!e->commit([&](write_txn& tx) { identity_table::put(tx, device, "p-3"); }));
  CHECK(members_of("p-3") == std::vector<policies::identity>{device});
  CHECK(members_of("p-1") == std::vector<policies::identity>{user, other});

  std::vector<policies::identity> erased;
  REQUIRE(!e->commit([&](write_txn& tx) { erased = identity_table::erase_profile(tx, "p-1"); }));
  CHECK(erased.size() == 2);
  CHECK(members_of("p-1").empty());
  auto tx = e->read();
  CHECK_FALSE(identity_table::get(tx, user));
  CHECK_FALSE(identity_table::get(tx, other));
  CHECK(identity_table::get(tx, device) == std::string("p-3"));
}

}  // namespace
}  // namespace nudge::storage
