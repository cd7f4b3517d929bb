#include <catch2/catch.hpp>

#include "storage/outbox_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

using test::at_ms;

outbox_entry entry(const std::string& pid, const std::string& did, const std::string& dest) {
  return {pid, did, dest, at_ms(1234), R"({"type":"decision","decision_id":")" + did + R"("})"};
}

std::vector<outbox_entry> pending(env& e, const std::string& after = "", std::size_t limit = 100) {
  std::error_code ec;
  auto txn = e.read();
  auto out = outbox_table::read_pending(txn, after, limit, ec);
  REQUIRE(!ec);
  return out;
}

TEST_CASE("outbox entries are read back whole, paged, and leave on delivery or failure", "[storage][outbox]") {
  test::temp_dir dir;
  auto e = test::open_env(test::options_for(dir.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    outbox_table::put(tx, entry("p-a", "d-1", "esp"));
    outbox_table::put(tx, entry("p-a", "d-1", "sms"));
    outbox_table::put(tx, entry("p-b", "d-2", "esp"));
  }));
  auto all = pending(*e);
  REQUIRE(all.size() == 3);
  CHECK(all[0].profile_id == "p-a");
  CHECK(all[0].decision_id == "d-1");
  CHECK(all[0].destination_id == "esp");
  CHECK(all[0].created == at_ms(1234));
  CHECK(all[0].body == R"({"type":"decision","decision_id":"d-1"})");

  auto page = pending(*e, "", 2);
  REQUIRE(page.size() == 2);
  auto rest = pending(*e, outbox_table::key_of(page.back()));
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].profile_id == "p-b");

  bool erased = false;
  REQUIRE(!e->commit([&](write_txn& tx) {
    erased = outbox_table::erase(tx, outbox_table::key_of(all[0]));
    outbox_table::mark_failed(tx, all[1]);
  }));
  CHECK(erased);
  REQUIRE(pending(*e).size() == 1);
  CHECK(e->entries(e->outbox()) == 1);
  CHECK(e->entries(e->outbox_failed()) == 1);
}

TEST_CASE("outbox attempts are stored on a pending entry; neither attempts nor a failure revive an entry that left",
          "[storage][outbox]") {
  test::temp_dir dir;
  auto e = test::open_env(test::options_for(dir.path()));
  auto pending_entry = entry("p-a", "d-1", "esp");
  auto gone = entry("p-b", "d-2", "esp");
  REQUIRE(!e->commit([&](write_txn& tx) { outbox_table::put(tx, pending_entry); }));
  CHECK(pending(*e)[0].attempts == 0);
  pending_entry.attempts = 7;
  gone.attempts = 3;
  REQUIRE(!e->commit([&](write_txn& tx) {
    outbox_table::record_attempts(tx, pending_entry);
    outbox_table::record_attempts(tx, gone);  // delivered or erased meanwhile: not pending
    outbox_table::mark_failed(tx, gone);
  }));
  auto all = pending(*e);
  REQUIRE(all.size() == 1);
  CHECK(all[0].attempts == 7);
  CHECK(all[0].body == pending_entry.body);
  CHECK(e->entries(e->outbox_failed()) == 0);
}

TEST_CASE("outbox erase_profile removes pending and failed entries of one profile only", "[storage][outbox][erasure]") {
  test::temp_dir dir;
  auto e = test::open_env(test::options_for(dir.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    outbox_table::put(tx, entry("p-a", "d-1", "esp"));
    outbox_table::put(tx, entry("p-a", "d-3", "esp"));
    outbox_table::mark_failed(tx, entry("p-a", "d-3", "esp"));
    outbox_table::put(tx, entry("p-ab", "d-2", "esp"));
  }));
  std::size_t removed = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { removed = outbox_table::erase_profile(tx, "p-a"); }));
  CHECK(removed == 2);
  auto left = pending(*e);
  REQUIRE(left.size() == 1);
  CHECK(left[0].profile_id == "p-ab");
  CHECK(e->entries(e->outbox_failed()) == 0);
}

}  // namespace
}  // namespace nudge::storage
