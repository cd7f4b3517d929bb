#include <catch2/catch.hpp>

#include "storage/journal_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

std::vector<std::uint64_t> seqs(const std::vector<journal_entry>& entries) {
  std::vector<std::uint64_t> out;
  for (const auto& e : entries)
    out.push_back(e.seq);
  return out;
}

using seq_list = std::vector<std::uint64_t>;

TEST_CASE("journal entries of interleaved profiles stay apart and in seq order",
          "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  // "p-1" is a prefix of "p-10"; seqs cross byte boundaries (255/256) to catch
  // little-endian or text ordering.
  const seq_list p1_seqs{1, 2, 3, 255, 256, 1000, 70000};
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (std::uint64_t s : {70000u, 3u, 1u, 256u})
      journal_table::append(tx, "p-1", test::sample_entry(s, "/p-1"));
    for (std::uint64_t s : {1u, 2u, 3u, 4u})
      journal_table::append(tx, "p-10", test::sample_entry(s, "/p-10"));
    journal_table::append(tx, "p-", test::sample_entry(5, "/p-"));
    journal_table::append(tx, "p-0", test::sample_entry(5, "/p-0"));
  }));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (std::uint64_t s : {2u, 1000u, 255u})
      journal_table::append(tx, "p-1", test::sample_entry(s, "/p-1"));
  }));

  auto tx = e->read();
  std::error_code ec;
  auto all = journal_table::read_after(tx, "p-1", 0, ec);
  REQUIRE(!ec);
  CHECK(seqs(all) == p1_seqs);
  for (const auto& entry : all) {
    CHECK(entry.message_id == "m-" + std::to_string(entry.seq) + "/p-1");
    CHECK(test::same(entry, test::sample_entry(entry.seq, "/p-1")));
  }
  CHECK(seqs(journal_table::read_after(tx, "p-1", 3, ec)) == seq_list{255, 256, 1000, 70000});
  CHECK(seqs(journal_table::read_after(tx, "p-1", 70000, ec)).empty());
  CHECK(seqs(journal_table::read_after(tx, "p-10", 0, ec)) == seq_list{1, 2, 3, 4});
  CHECK(seqs(journal_table::read_after(tx, "p-", 0, ec)) == seq_list{5});
  CHECK(seqs(journal_table::read_after(tx, "p-2", 0, ec)).empty());
  CHECK(journal_table::last_seq(tx, "p-1", ec) == 70000);
  CHECK(journal_table::last_seq(tx, "p-10", ec) == 4);
  CHECK(journal_table::last_seq(tx, "p-0", ec) == 5);
  CHECK(journal_table::last_seq(tx, "p-2", ec) == 0);
  CHECK(journal_table::last_seq(tx, "q", ec) == 0);
  CHECK(!ec);
}

TEST_CASE("pruning deletes a profile's entries up to a seq and nothing else",
          "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (std::uint64_t s = 1; s <= 10; ++s) {
      journal_table::append(tx, "p-1", test::sample_entry(s));
      journal_table::append(tx, "p-10", test::sample_entry(s));
    }
  }));
  std::size_t pruned = 0, pruned_none = 1;
  REQUIRE(!e->commit([&](write_txn& tx) {
    pruned = journal_table::prune(tx, "p-1", 6);
    pruned_none = journal_table::prune(tx, "p-1", 6);
  }));
  CHECK(pruned == 6);
  CHECK(pruned_none == 0);
  {
    auto tx = e->read();
    std::error_code ec;
    CHECK(seqs(journal_table::read_after(tx, "p-1", 0, ec)) == seq_list{7, 8, 9, 10});
    CHECK(seqs(journal_table::read_after(tx, "p-10", 0, ec)).size() == 10);
  }
  std::size_t erased = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { erased = journal_table::erase_all(tx, "p-1"); }));
  CHECK(erased == 4);
  auto tx = e->read();
  std::error_code ec;
  CHECK(journal_table::read_after(tx, "p-1", 0, ec).empty());
  CHECK(seqs(journal_table::read_after(tx, "p-10", 0, ec)).size() == 10);
  CHECK(e->entries(e->journal()) == 10);
}

TEST_CASE("pruning many entries across pages deletes exactly the range", "[storage][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (std::uint64_t s = 1; s <= 3000; ++s) {
      journal_table::append(tx, "p-a", test::sample_entry(s));
      if (s % 3 == 0)
        journal_table::append(tx, "p-b", test::sample_entry(s));
    }
  }));
  std::size_t pruned = 0;
  REQUIRE(!e->commit([&](write_txn& tx) { pruned = journal_table::prune(tx, "p-a", 2500); }));
  CHECK(pruned == 2500);
  auto tx = e->read();
  std::error_code ec;
  auto rest = journal_table::read_after(tx, "p-a", 0, ec);
  REQUIRE(rest.size() == 500);
  CHECK(rest.front().seq == 2501);
  CHECK(rest.back().seq == 3000);
  CHECK(journal_table::read_after(tx, "p-b", 0, ec).size() == 1000);
}

}  // namespace
}  // namespace nudge::storage
