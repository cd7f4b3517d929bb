#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "storage/env.hpp"
#include "storage/meta_table.hpp"
#include "storage/profile_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {


TEST_CASE("opening creates the directory and every table", "[storage][env]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp / "a/b");
  auto e = test::open_env(o);
  CHECK(std::filesystem::exists(tmp / "a/b/data.mdb"));
  auto perms = std::filesystem::status(tmp / "a/b").permissions();
  CHECK((perms & std::filesystem::perms::all) == std::filesystem::perms::owner_all);
  const MDB_dbi dbis[] = {e->profiles(), e->journal(), e->identities(),
                          e->aliases(),  e->dedupe(),  e->meta()};
  for (std::size_t i = 0; i < std::size(dbis); ++i)
    for (std::size_t j = i + 1; j < std::size(dbis); ++j)
      CHECK(dbis[i] != dbis[j]);
  CHECK(e->entries(e->profiles()) == 0);
  CHECK(e->entries(e->meta()) == 1);  // schema_version
  auto tx = e->read();
  CHECK(meta_table::get(tx, "schema_version") == std::string(env::schema_version));
}

TEST_CASE("committed data is seen after the env is closed and reopened", "[storage][env]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  {
    auto e = test::open_env(o);
    REQUIRE(!e->commit([](write_txn& tx) {
      profile_table::put(tx, {test::full_profile("p-1"), 5});
      meta_table::put(tx, "policy", "{}");
    }));
  }
  auto e = test::open_env(o);
  auto tx = e->read();
  std::error_code ec;
  auto snap = profile_table::get(tx, "p-1", ec);
  REQUIRE(!ec);
  REQUIRE(snap);
  CHECK(snap->seq == 5);
  CHECK(test::same(snap->state, test::full_profile("p-1")));
  CHECK(meta_table::get(tx, "policy") == std::string("{}"));
}

TEST_CASE("each durability opens LMDB with its flags, and every mode reads what the others wrote",
          "[storage][env]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  // "process" with the writable map, "power", "process" with pwrite, and back.
  struct mode {
    bool power, writable_map;
    std::string name;
  };
  const std::vector<mode> modes = {
    {false, true, "process"}, {true, true, "power"}, {false, false, "pwrite"}, {false, true, "process-again"}};
  for (std::size_t m = 0; m < modes.size(); ++m) {
    const auto& [power, writable_map, name] = modes[m];
    o.sync_each_commit = power;
    o.writable_map = writable_map;
    auto e = test::open_env(o);
    unsigned flags = 0;
    REQUIRE(mdb_env_get_flags(e->get(), &flags) == MDB_SUCCESS);
    INFO(name << ", flags " << flags);
    CHECK(((flags & MDB_WRITEMAP) != 0) == (!power && writable_map));
    CHECK(((flags & MDB_NOSYNC) != 0) == !power);
    // Prefaulting needs the writable map: without it the env never offers to.
    REQUIRE(!test::write_blobs(*e, name, 0, 50, 3000));  // overflow pages, several per commit
    CHECK(e->prefault_due() == (!power && writable_map));
    auto tx = e->read();
    CHECK(meta_table::get(tx, name + "49") == std::string(3000, 'x'));
    for (std::size_t before = 0; before < m; ++before)
      CHECK(meta_table::get(tx, modes[before].name + "49") == std::string(3000, 'x'));
  }
}

TEST_CASE("the map grows on demand from a small initial size", "[storage][env]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_initial = 1ull << 20;
  o.map_size_max = 1ull << 30;
  auto e = test::open_env(o);
  const auto initial = e->map_size();
  CHECK(initial == (1ull << 20));

  // ~20 MiB in 10 commits of 2 MiB, one of them (the first) alone larger than the map.
  for (int c = 0; c < 10; ++c)
    REQUIRE(!test::write_blobs(*e, "blob-", c * 64, 64, 32 * 1024));
  CHECK(e->map_size() > initial);
  CHECK(e->map_size() >= (20ull << 20));
  CHECK(e->entries(e->meta()) == 1 + 640);

  auto tx = e->read();
  auto v = meta_table::get(tx, "blob-639");
  REQUIRE(v);
  CHECK(v->size() == 32 * 1024);
}

TEST_CASE("a read transaction opened on another thread does not block growth forever",
          "[storage][env]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) {
      auto tx = e->read();
      (void)meta_table::get(tx, "blob-1");
    }
  });
  for (int c = 0; c < 5; ++c)
    REQUIRE(!test::write_blobs(*e, "blob-", c * 64, 64, 16 * 1024));
  reader.join();
  CHECK(e->map_size() > (1ull << 20));
}

TEST_CASE("readers on several threads stay valid while the map grows under them",
          "[storage][env]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!test::write_blobs(*e, "fixed-", 0, 1, 4096));
  std::atomic<bool> stop{false};
  std::atomic<int> bad_reads{0};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto tx = e->read();
        auto v = meta_table::get(tx, "fixed-0");
        // Touch every byte: a map moved under a live txn would fault or differ here.
        if (!v || *v != std::string(4096, 'x'))
          bad_reads.fetch_add(1);
        reads.fetch_add(1);
      }
    });
  while (reads.load() < 3)  // the readers are running before the map moves
    std::this_thread::yield();
  std::error_code ec;
  for (int c = 0; c < 8 && !ec; ++c)
    ec = test::write_blobs(*e, "grow-", c * 64, 64, 32 * 1024);
  stop = true;
  for (auto& r : readers)
    r.join();
  REQUIRE(!ec);
  CHECK(bad_reads.load() == 0);
  CHECK(e->map_size() >= (16ull << 20));
}

TEST_CASE("a commit past map_size_max fails with map_full and leaves the env usable",
          "[storage][env]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_initial = 1ull << 20;
  o.map_size_max = 2ull << 20;
  auto e = test::open_env(o);
  REQUIRE(!test::write_blobs(*e, "early-", 0, 4, 1024));

  auto ec = test::write_blobs(*e, "huge-", 0, 128, 32 * 1024);  // 4 MiB > 2 MiB
  CHECK(ec == errc::map_full);
  CHECK(ec.category() == storage_category());
  CHECK(e->map_size() == o.map_size_max);

  auto tx = e->read();
  CHECK(meta_table::get(tx, "early-3") == std::string(1024, 'x'));
  CHECK_FALSE(meta_table::get(tx, "huge-0"));
  tx.reset();

  REQUIRE(!test::write_blobs(*e, "later-", 0, 4, 1024));
  auto tx2 = e->read();
  CHECK(meta_table::get(tx2, "later-3").has_value());
}

TEST_CASE("an exception thrown by apply aborts the commit as txn_failed", "[storage][env]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  auto ec = e->commit([](write_txn& tx) {
    meta_table::put(tx, "k", "v");
    throw std::runtime_error("boom");
  });
  CHECK(ec == errc::txn_failed);
  auto tx = e->read();
  CHECK_FALSE(meta_table::get(tx, "k"));
}

TEST_CASE("an LMDB failure inside apply aborts the commit even if apply swallows it",
          "[storage][env]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  bool later_write_refused = false;
  auto ec = e->commit([&](write_txn& tx) {
    meta_table::put(tx, "k", "v");
    try {
      meta_table::put(tx, std::string(600, 'k'), "v");  // longer than LMDB's 511-byte keys
    } catch (...) {
    }
    CHECK(tx.failed());
    try {
      meta_table::put(tx, "k2", "v");
    } catch (...) {
      later_write_refused = true;
    }
  });
  CHECK(ec == errc::txn_failed);
  CHECK(later_write_refused);
  auto tx = e->read();
  CHECK_FALSE(meta_table::get(tx, "k"));
}

TEST_CASE("a commit with sync_each_commit succeeds and sync() works", "[storage][env]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.sync_each_commit = true;
  auto e = test::open_env(o);
  REQUIRE(!test::write_blobs(*e, "s-", 0, 3, 10));
  CHECK(!e->sync());
}

TEST_CASE("read transactions are movable and reusable", "[storage][env]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!test::write_blobs(*e, "r-", 0, 1, 3));
  for (int i = 0; i < 100; ++i) {
    read_txn a = e->read();
    REQUIRE(a);
    read_txn b = std::move(a);
    CHECK_FALSE(a);
    CHECK(meta_table::get(b, "r-0") == std::string("xxx"));
    read_txn nested = e->read();  // a second txn on the same thread is fine
    CHECK(meta_table::get(nested, "r-0").has_value());
  }
}

TEST_CASE("a snapshot held on another thread does not see a later commit",
          "[storage][env]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  read_txn snapshot = e->read();
  std::error_code ec;
  std::thread writer([&] { ec = test::write_blobs(*e, "w-", 0, 1, 3); });
  writer.join();
  REQUIRE(!ec);
  CHECK_FALSE(meta_table::get(snapshot, "w-0"));
  snapshot.reset();
  auto fresh = e->read();
  CHECK(meta_table::get(fresh, "w-0").has_value());
}

TEST_CASE("an env whose schema version is unknown does not open", "[storage][env]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  {
    auto e = test::open_env(o);
    REQUIRE(!e->commit([](write_txn& tx) { meta_table::put(tx, "schema_version", "999"); }));
  }
  std::error_code ec;
  auto e = env::open(o, ec);
  CHECK_FALSE(e);
  CHECK(ec == errc::corrupt);
}

TEST_CASE("an env of schema 1, 2 or 3 (logs inline) opens and is marked 4, which older builds refuse",
          "[storage][env]") {
  for (const char* old : {"1", "2", "3"}) {
    INFO("schema " << old);
    test::temp_dir tmp;
    auto o = test::options_for(tmp.path());
    {
      auto e = test::open_env(o);
      REQUIRE(!e->commit([&](write_txn& tx) { meta_table::put(tx, "schema_version", old); }));
    }
    std::error_code ec;
    auto e = env::open(o, ec);
    REQUIRE(e);
    auto tx = e->read();
    CHECK(meta_table::get(tx, "schema_version") == std::string("4"));
  }
}

TEST_CASE("an env cannot be opened where a file stands", "[storage][env]") {
  test::temp_dir tmp;
  { std::ofstream(tmp / "file") << "x"; }
  std::error_code ec;
  auto e = env::open(test::options_for(tmp / "file"), ec);
  CHECK_FALSE(e);
  CHECK(ec == errc::io_error);
}

TEST_CASE("copy_to writes a compacted env that opens and holds the data", "[storage][env]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp / "live"));
  REQUIRE(!e->commit([](write_txn& tx) {
    profile_table::put(tx, {test::full_profile("p-1"), 1});
    profile_table::put(tx, {test::full_profile("p-gone"), 1});
  }));
  REQUIRE(!e->commit([](write_txn& tx) { profile_table::erase(tx, "p-gone"); }));

  REQUIRE(!e->copy_to(tmp / "backup"));
  CHECK(e->copy_to(tmp / "backup") == errc::io_error);  // never overwrites a backup

  // The live env goes on writing; the copy is unaffected.
  REQUIRE(!e->commit([](write_txn& tx) { profile_table::put(tx, {test::full_profile("p-2"), 1}); }));

  auto copy = test::open_env(test::options_for(tmp / "backup"));
  auto tx = copy->read();
  std::error_code ec;
  auto snap = profile_table::get(tx, "p-1", ec);
  REQUIRE(snap);
  CHECK(test::same(snap->state, test::full_profile("p-1")));
  CHECK_FALSE(profile_table::get(tx, "p-gone", ec));
  CHECK_FALSE(profile_table::get(tx, "p-2", ec));
  CHECK(profile_table::count(tx) == 1);
}

}  // namespace
}  // namespace nudge::storage

namespace nudge::storage {
namespace {

TEST_CASE("scrubbed_copy_to holds every live record and no byte of erased ones", "[storage][env]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp / "live"));
  REQUIRE(!e->commit([](write_txn& tx) {
    for (int i = 0; i < 200; ++i)
      meta_table::put(tx, "keep-" + std::to_string(i), "value-" + std::to_string(i));
    meta_table::put(tx, "secret-key-4711", "secret-value-4711");
  }));
  REQUIRE(!e->commit([](write_txn& tx) { meta_table::erase(tx, "secret-key-4711"); }));

  REQUIRE(!e->scrubbed_copy_to(tmp / "backup"));
  CHECK(e->scrubbed_copy_to(tmp / "backup") == errc::io_error);  // never overwrites a backup
  CHECK_FALSE(std::filesystem::exists(tmp / "backup/.compact"));
  std::ifstream in(tmp / "backup/data.mdb", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(raw.find("secret-key-4711") == std::string::npos);
  CHECK(raw.find("secret-value-4711") == std::string::npos);

  auto copy = test::open_env(test::options_for(tmp / "backup"));
  CHECK(copy->entries(copy->meta()) == e->entries(e->meta()));
  auto tx = copy->read();
  for (int i = 0; i < 200; ++i)
    CHECK(meta_table::get(tx, "keep-" + std::to_string(i)) == "value-" + std::to_string(i));
  CHECK_FALSE(meta_table::get(tx, "secret-key-4711"));
}

}  // namespace
}  // namespace nudge::storage
