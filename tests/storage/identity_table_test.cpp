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

TEST_CASE("erase_if_owned takes an identity only from the profile that holds it", "[storage][identity]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  const policies::identity mine{"email", "a@example.com"};
  const policies::identity moved{"device_id", "d-1"};
  REQUIRE(!e->commit([&](write_txn& tx) {
    identity_table::put(tx, mine, "p-1");
    identity_table::put(tx, moved, "p-2");
  }));
  bool a = false, b = true, c = true;
  REQUIRE(!e->commit([&](write_txn& tx) {
    a = identity_table::erase_if_owned(tx, mine, "p-1");
    b = identity_table::erase_if_owned(tx, moved, "p-1");
    c = identity_table::erase_if_owned(tx, {"email", "none@example.com"}, "p-1");
  }));
  CHECK(a);
  CHECK_FALSE(b);
  CHECK_FALSE(c);
  auto tx = e->read();
  CHECK_FALSE(identity_table::get(tx, mine));
  CHECK(identity_table::get(tx, moved) == std::string("p-2"));
}

}  // namespace
}  // namespace nudge::storage
