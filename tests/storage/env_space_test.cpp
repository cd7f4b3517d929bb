// Space and reader-slot upkeep of the env: preallocation ahead of the used end,
// stats(), and clearing the reader slot of a process killed mid-read.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "storage/env.hpp"
#include "storage/meta_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

/// Bytes the file system has allocated to `file` (written or fallocated blocks).
std::uint64_t on_disk(const std::filesystem::path& file) {
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

TEST_CASE("the data file stays allocated ahead of its used end as it grows", "[storage][env][space]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_initial = 64ull << 20;  // the file is this large and sparse from the start
  o.preallocate_ahead = 2ull << 20;
  auto e = test::open_env(o);
  for (int round = 0; round < 12; ++round) {
    REQUIRE(!test::write_blobs(*e, "blob-", round * 50, 50, 8 * 1024));  // ~600 KiB per round
    const auto s = e->stats();
    INFO("round " << round << ": used " << s.map_used_bytes << ", allocated " << s.allocated_bytes);
    CHECK(s.map_size_bytes == o.map_size_initial);
    CHECK(s.map_used_bytes > 0);
    // Topped up before each commit: at least half of preallocate_ahead was ahead of
    // the used end when this commit began, and never more than preallocate_ahead.
    CHECK(s.allocated_bytes >= s.map_used_bytes);
    CHECK(s.allocated_bytes <= s.map_used_bytes + o.preallocate_ahead);
    CHECK(on_disk(tmp / "data.mdb") >= s.allocated_bytes);
  }
  // Far less than the map was allocated: preallocation follows use.
  CHECK(e->stats().allocated_bytes < o.map_size_initial / 4);
  CHECK(e->stats().disk_full_refusals == 0);
}

TEST_CASE("a top-up allocates ahead once a quarter is used, before commits would wait for it",
          "[storage][env][space]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_initial = 64ull << 20;
  o.preallocate_ahead = 8ull << 20;
  auto e = test::open_env(o);
  REQUIRE(!test::write_blobs(*e, "warm-", 0, 10, 1024));
  const auto start = e->stats();
  REQUIRE(start.allocated_bytes > start.map_used_bytes + o.preallocate_ahead * 3 / 4);
  CHECK(!e->top_up_due());
  CHECK(!e->reserve_due());
  // ~2.5 MiB more: past a quarter of the allocation ahead, short of half.
  int written = 0;
  while (e->stats().map_used_bytes < start.map_used_bytes + (5ull << 19) && written < 1000) {
    REQUIRE(!test::write_blobs(*e, "blob-", written, 16, 16 * 1024));
    written += 16;
  }
  const auto used = e->stats();
  INFO("used " << used.map_used_bytes << ", allocated " << used.allocated_bytes);
  REQUIRE(used.map_used_bytes < start.map_used_bytes + (4ull << 20));
  CHECK(used.allocated_bytes == start.allocated_bytes);  // the commits did not allocate
  CHECK(e->top_up_due());
  CHECK(!e->reserve_due());
  e->top_up();
  const auto topped = e->stats();
  CHECK(topped.allocated_bytes == topped.map_used_bytes + o.preallocate_ahead);
  CHECK(on_disk(tmp / "data.mdb") >= topped.allocated_bytes);
  CHECK(!e->top_up_due());
  e->top_up();  // nothing due: nothing changes
  CHECK(e->stats().allocated_bytes == topped.allocated_bytes);
}

TEST_CASE("top-ups on one thread while another commits keep the allocation ahead of every commit",
          "[storage][env][space]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_initial = 64ull << 20;
  o.preallocate_ahead = 2ull << 20;
  auto e = test::open_env(o);
  std::atomic<bool> done{false};
  std::atomic<int> top_ups{0};
  std::thread writer([&] {
    // Bounded: stops when the committing thread is done, or after ~10 s.
    for (int i = 0; i < 1'000'000 && !done.load(); ++i) {
      if (e->top_up_due()) {
        e->top_up();
        top_ups.fetch_add(1);
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(10));
      }
    }
  });
  bool ok = true;
  for (int round = 0; round < 60 && ok; ++round) {
    ok = !test::write_blobs(*e, "blob-", round * 20, 20, 8 * 1024);
    const auto s = e->stats();
    ok = ok && s.allocated_bytes >= s.map_used_bytes;
  }
  done.store(true);
  writer.join();
  CHECK(ok);
  CHECK(top_ups.load() > 0);
  CHECK(e->stats().disk_full_refusals == 0);
  auto txn = e->read();
  CHECK(meta_table::get(txn, "blob-1199") == std::string(8 * 1024, 'x'));
}

/// Page faults this thread has taken so far. A first write to a page of the file that
/// is not in the page cache yet counts as a major fault, even on a preallocated
/// block, which is read as zeros without I/O.
long thread_page_faults() {
  struct rusage ru {};
  REQUIRE(::getrusage(RUSAGE_THREAD, &ru) == 0);
  return ru.ru_minflt + ru.ru_majflt;
}

/// Prefaults until nothing is due (bounded: the map here is small); returns the bytes.
std::uint64_t prefault_all(env& e) {
  std::uint64_t total = 0;
  for (int i = 0; i < 1000 && e.prefault_due(); ++i)
    total += e.prefault_some(1 << 20);
  CHECK(!e.prefault_due());
  return total;
}

TEST_CASE("prefaulted pages past the used end take a commit's writes without page faults",
          "[storage][env][space]") {
  // Two envs alike but for prefault; each writes the same records into pages it has
  // never used. The commit's own thread counts its page faults.
  long faults[2] = {0, 0};
  for (int on = 0; on < 2; ++on) {
    test::temp_dir tmp;
    auto o = test::options_for(tmp.path());
    o.map_size_initial = 64ull << 20;
    o.preallocate_ahead = 16ull << 20;
    o.prefault = on == 1;
    auto e = test::open_env(o);
    REQUIRE(!test::write_blobs(*e, "warm-", 0, 20, 1024));  // allocates ahead of the used end
    const auto before = e->stats();
    REQUIRE(before.allocated_bytes > before.map_used_bytes + (8ull << 20));
    if (on == 1) {
      CHECK(e->prefault_due());
      CHECK(prefault_all(*e) >= (8ull << 20));
      const auto s = e->stats();
      CHECK(s.prefaulted_bytes == s.allocated_bytes);
    } else {
      CHECK(!e->prefault_due());
      CHECK(e->prefault_some(1 << 20) == 0);
      CHECK(e->stats().prefaulted_bytes == 0);
    }
    const long f0 = thread_page_faults();
    REQUIRE(!test::write_blobs(*e, "blob-", 0, 200, 16 * 1024));  // ~3.2 MB of new pages
    faults[on] = thread_page_faults() - f0;
    // What the commit wrote reads back: prefaulting changed no byte.
    auto txn = e->read();
    CHECK(meta_table::get(txn, "blob-199") == std::string(16 * 1024, 'x'));
    CHECK(meta_table::get(txn, "warm-0") == std::string(1024, 'x'));
  }
  INFO("page faults of the commit: " << faults[0] << " without prefault, " << faults[1] << " with");
  // ~800 new pages of the map, each faulted on its first write without prefaulting. The
  // commit's other faults (the heap; a sanitizer's shadow memory, ~130 under ASan)
  // come either way.
  CHECK(faults[0] >= 500);
  CHECK(faults[0] - faults[1] >= 500);  // prefaulted: the map's pages were mapped already
}

TEST_CASE("prefaulting starts again after the map grows and moves, and is off with syncs per commit",
          "[storage][env][space]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp / "grow");
  o.map_size_initial = 2ull << 20;
  o.map_size_max = 64ull << 20;
  o.preallocate_ahead = 4ull << 20;
  {
    auto e = test::open_env(o);
    REQUIRE(!test::write_blobs(*e, "a-", 0, 10, 1024));
    CHECK(prefault_all(*e) > 0);
    CHECK(e->stats().prefaulted_bytes == e->stats().allocated_bytes);
    REQUIRE(!test::write_blobs(*e, "b-", 0, 150, 16 * 1024));  // ~2.4 MB: the map grows to 4 MiB
    const auto grown = e->stats();
    INFO("grown: map " << grown.map_size_bytes << ", used " << grown.map_used_bytes << ", allocated "
                       << grown.allocated_bytes << ", prefaulted " << grown.prefaulted_bytes);
    REQUIRE(grown.map_size_bytes == 2 * o.map_size_initial);
    CHECK(grown.prefaulted_bytes == 0);  // the new map starts unmapped
    REQUIRE(!test::write_blobs(*e, "c-", 0, 10, 1024));  // tops the allocation up to the new map's end
    CHECK(e->stats().allocated_bytes == grown.map_size_bytes);
    CHECK(prefault_all(*e) > 0);
    CHECK(e->stats().prefaulted_bytes == e->stats().allocated_bytes);
    REQUIRE(!test::write_blobs(*e, "d-", 0, 10, 16 * 1024));
    auto txn = e->read();
    CHECK(meta_table::get(txn, "a-9") == std::string(1024, 'x'));
    CHECK(meta_table::get(txn, "b-149") == std::string(16 * 1024, 'x'));
    CHECK(meta_table::get(txn, "d-9") == std::string(16 * 1024, 'x'));
  }
  auto power = test::options_for(tmp / "power");
  power.map_size_initial = 64ull << 20;
  power.sync_each_commit = true;
  auto e = test::open_env(power);
  REQUIRE(!test::write_blobs(*e, "a-", 0, 10, 1024));
  CHECK(e->stats().allocated_bytes > 0);
  CHECK(!e->prefault_due());
  CHECK(e->prefault_some(1 << 20) == 0);
  CHECK(e->stats().prefaulted_bytes == 0);
}

TEST_CASE("a small map is allocated whole and preallocation 0 allocates nothing", "[storage][env][space]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp / "small");
  o.map_size_initial = 1ull << 20;
  o.map_size_max = 4ull << 20;
  {
    auto e = test::open_env(o);
    REQUIRE(!test::write_blobs(*e, "blob-", 0, 10, 1024));
    CHECK(e->stats().allocated_bytes == 1ull << 20);
    REQUIRE(!test::write_blobs(*e, "blob-", 10, 200, 8 * 1024));  // grows the map to 2 then 4 MiB
    CHECK(e->stats().map_size_bytes == 4ull << 20);
    CHECK(e->stats().allocated_bytes == 4ull << 20);
    CHECK(on_disk(tmp / "small/data.mdb") >= 4ull << 20);
  }
  auto off = test::options_for(tmp / "off");
  off.preallocate_ahead = 0;
  off.map_size_initial = 64ull << 20;
  auto e = test::open_env(off);
  REQUIRE(!test::write_blobs(*e, "blob-", 0, 10, 1024));
  CHECK(e->stats().allocated_bytes == 0);
  CHECK(on_disk(tmp / "off/data.mdb") < 1ull << 20);  // sparse: only the written pages
}

TEST_CASE("a full map is emptied by a reclaiming commit, and then takes ordinary commits again",
          "[storage][env][space]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_initial = 1ull << 20;
  o.map_size_max = 4ull << 20;
  auto e = test::open_env(o);
  // Fill with small records spread over many pages, as dedupe entries are.
  int n = 0;
  std::error_code ec;
  while (!ec && n < 100000) {
    ec = test::write_blobs(*e, "blob-", n, 200, 300);
    n += 200;
  }
  REQUIRE(ec == errc::map_full);
  const auto erase_every_other = [&](env::commit_mode mode) {
    return e->commit(
        [&](write_txn& tx) {
          for (int i = 0; i < n; i += 2)
            meta_table::erase(tx, "blob-" + std::to_string(i));
        },
        mode);
  };
  // Deleting needs fresh pages first (copy on write): an ordinary commit cannot.
  CHECK(erase_every_other(env::commit_mode::normal) == errc::map_full);
  REQUIRE(!erase_every_other(env::commit_mode::reclaim));
  CHECK(e->map_size() >= o.map_size_max);
  CHECK(e->map_size() <= o.map_size_max + e->reclaim_reserve());
  CHECK(e->map_size() == std::max<std::uint64_t>(o.map_size_max, e->stats().map_used_bytes));
  // The freed pages take new writes, within map_size_max again.
  REQUIRE(!test::write_blobs(*e, "blob-", n, 200, 300));
  auto tx = e->read();
  CHECK(meta_table::get(tx, "blob-1").has_value());
  CHECK_FALSE(meta_table::get(tx, "blob-2").has_value());
  CHECK(meta_table::get(tx, "blob-" + std::to_string(n + 199)).has_value());
}

TEST_CASE("check_readers clears the slot of a process killed while it held a read transaction",
          "[storage][env][readers]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!test::write_blobs(*e, "blob-", 0, 1, 16));
  CHECK(e->check_readers() == 0);
  const auto before = e->stats();

  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child: its own handle on the same files, one read transaction, then it
    // waits to be killed (at most 30 s).
    ::close(ready[0]);
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    MDB_stat st{};
    if (mdb_env_create(&env) != 0 || mdb_env_open(env, tmp.path().c_str(), MDB_RDONLY, 0600) != 0 ||
        mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != 0 || mdb_stat(txn, 1, &st) != 0)
      ::_exit(1);
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1)
      ::_exit(1);
    ::sleep(30);
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  const bool child_ready = ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  const auto held = e->stats();
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(child_ready);
  CHECK(held.readers_in_use == before.readers_in_use + 1);

  // The dead process's slot stays taken until a check clears it.
  CHECK(e->stats().readers_in_use == before.readers_in_use + 1);
  CHECK(e->check_readers() == 1);
  const auto after = e->stats();
  CHECK(after.readers_in_use == before.readers_in_use);
  CHECK(after.readers_cleared == before.readers_cleared + 1);
  CHECK(e->check_readers() == 0);
  REQUIRE(!test::write_blobs(*e, "blob-", 1, 1, 16));
}

}  // namespace
}  // namespace nudge::storage
