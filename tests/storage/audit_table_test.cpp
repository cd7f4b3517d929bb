#include <catch2/catch.hpp>

#include "storage/audit_table.hpp"
#include "storage/expiry_table.hpp"
#include "storage/suppression_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

using test::at_ms;

TEST_CASE("audit records are kept per profile in time order, also two of one millisecond",
          "[storage][audit]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    audit_table::append(tx, {"p-1", at_ms(20), "consent", R"({"purpose":"analytics"})"});
    audit_table::append(tx, {"p-1", at_ms(10), "merge", R"({"from":"p-0"})"});
    audit_table::append(tx, {"p-1", at_ms(20), "consent", R"({"purpose":"personalization"})"});
    audit_table::append(tx, {"p-10", at_ms(5), "consent", "{}"});  // a longer id with p-1 as prefix
    audit_table::append(tx, {"", at_ms(30), "erasure", R"({"erasure_id":"x-1"})"});
  }));
  auto tx = e->read();
  std::error_code ec;
  auto recs = audit_table::read(tx, "p-1", ec);
  REQUIRE(!ec);
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].kind == "merge");
  CHECK(recs[1].detail_json == R"({"purpose":"analytics"})");
  CHECK(recs[2].detail_json == R"({"purpose":"personalization"})");
  CHECK(recs[2].profile_id == "p-1");
  CHECK(recs[2].ts == at_ms(20));
  CHECK(audit_table::read(tx, "p-10", ec).size() == 1);
  CHECK(audit_table::read(tx, "p-2", ec).empty());
  CHECK(audit_table::read(tx, "", ec).size() == 1);
}

TEST_CASE("erasing a profile's audit records leaves others and the erasure records", "[storage][audit]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    for (int i = 0; i < 5; ++i)
      audit_table::append(tx, {"p-1", at_ms(i), "consent", "{}"});
    audit_table::append(tx, {"p-10", at_ms(1), "consent", "{}"});
    audit_table::append(tx, {"", at_ms(1), "erasure", "{}"});
  }));
  std::size_t erased = 0, none = 0;
  REQUIRE(!e->commit([&](write_txn& tx) {
    erased = audit_table::erase_profile(tx, "p-1");
    none = audit_table::erase_profile(tx, "");
  }));
  CHECK(erased == 5);
  CHECK(none == 0);
  auto tx = e->read();
  std::error_code ec;
  CHECK(audit_table::read(tx, "p-1", ec).empty());
  CHECK(audit_table::read(tx, "p-10", ec).size() == 1);
  CHECK(audit_table::read(tx, "", ec).size() == 1);
}

TEST_CASE("a merge moves the merged profile's audit records to the survivor", "[storage][audit]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    audit_table::append(tx, {"p-1", at_ms(10), "consent", R"({"n":1})"});
    audit_table::append(tx, {"p-2", at_ms(5), "consent", R"({"n":2})"});
    audit_table::append(tx, {"p-2", at_ms(15), "consent", R"({"n":3})"});
  }));
  std::size_t moved = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { moved = audit_table::move_all(tx, "p-2", "p-1"); }));
  CHECK(moved == 2);
  auto tx = e->read();
  std::error_code ec;
  CHECK(audit_table::read(tx, "p-2", ec).empty());
  auto recs = audit_table::read(tx, "p-1", ec);
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].detail_json == R"({"n":2})");
  CHECK(recs[1].detail_json == R"({"n":1})");
  CHECK(recs[2].detail_json == R"({"n":3})");
}

TEST_CASE("the expiry index answers what is due, earliest first, one due time per profile",
          "[storage][expiry]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    expiry_table::set(tx, "p-a", at_ms(300));
    expiry_table::set(tx, "p-b", at_ms(100));
    expiry_table::set(tx, "p-c", at_ms(200));
    expiry_table::set(tx, "p-a", at_ms(50));  // moved: the old due time goes
  }));
  {
    auto tx = e->read();
    std::error_code ec;
    auto due = expiry_table::due_before(tx, at_ms(250), 10, ec);
    REQUIRE(!ec);
    REQUIRE(due.size() == 3);
    CHECK(due[0] == std::pair{at_ms(50), std::string("p-a")});
    CHECK(due[1].second == "p-b");
    CHECK(due[2].second == "p-c");
    CHECK(expiry_table::due_before(tx, at_ms(250), 2, ec).size() == 2);
    CHECK(expiry_table::due_before(tx, at_ms(49), 10, ec).empty());
  }
  bool cleared = false, again = true;
  REQUIRE(!e->commit([&](write_txn& tx) {
    cleared = expiry_table::clear(tx, "p-b");
    again = expiry_table::clear(tx, "p-b");
  }));
  CHECK(cleared);
  CHECK_FALSE(again);
  auto tx = e->read();
  std::error_code ec;
  auto due = expiry_table::due_before(tx, at_ms(1000), 10, ec);
  REQUIRE(due.size() == 2);
  CHECK(due[0].second == "p-a");
  CHECK(due[1].second == "p-c");
  CHECK(e->entries(e->expiry()) == 2);
  CHECK(e->entries(e->expiry_owner()) == 2);
  CHECK(expiry_table::due_of(tx, "p-a", ec) == at_ms(50));
  CHECK(!ec);
  CHECK(expiry_table::due_of(tx, "p-c", ec) == at_ms(200));
  CHECK_FALSE(expiry_table::due_of(tx, "p-b", ec));  // cleared
  CHECK(!ec);
}

TEST_CASE("setting the due time a profile already has changes nothing, and a new one moves both entries",
          "[storage][expiry]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) { expiry_table::set(tx, "p-a", at_ms(300)); }));
  REQUIRE(!e->commit([](write_txn& tx) { expiry_table::set(tx, "p-a", at_ms(300)); }));
  CHECK(e->entries(e->expiry()) == 1);
  CHECK(e->entries(e->expiry_owner()) == 1);
  REQUIRE(!e->commit([](write_txn& tx) { expiry_table::set(tx, "p-a", at_ms(400)); }));
  CHECK(e->entries(e->expiry()) == 1);
  CHECK(e->entries(e->expiry_owner()) == 1);
  auto tx = e->read();
  std::error_code ec;
  CHECK(expiry_table::due_of(tx, "p-a", ec) == at_ms(400));
  auto due = expiry_table::due_before(tx, at_ms(1000), 10, ec);
  REQUIRE(due.size() == 1);
  CHECK(due[0] == std::pair{at_ms(400), std::string("p-a")});
  CHECK(expiry_table::due_before(tx, at_ms(399), 10, ec).empty());
}

TEST_CASE("the suppression list answers listed hashes only", "[storage][suppression]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  const std::string h1(32, '\x01'), h2(32, '\x02');
  REQUIRE(!e->commit([&](write_txn& tx) { suppression_table::put(tx, h1, at_ms(1)); }));
  auto tx = e->read();
  std::error_code ec;
  CHECK(suppression_table::contains(tx, h1, ec));
  CHECK_FALSE(suppression_table::contains(tx, h2, ec));
  CHECK(!ec);
  CHECK(suppression_table::count(tx) == 1);
}

}  // namespace
}  // namespace nudge::storage
