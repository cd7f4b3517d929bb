// The commit log on its own (segments, records, checkpoints), its checksum, and LMDB's
// meta pages as detail/lmdb_meta.hpp reads them from a real data file.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "storage/commit_log.hpp"
#include "storage/detail/crc32c.hpp"
#include "storage/detail/lmdb_meta.hpp"
#include "storage/env.hpp"
#include "storage/meta_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

namespace fs = std::filesystem;

const commit_log::table_map tables = {{2, "profiles"}, {7, "meta"}};

std::unique_ptr<commit_log> open_log(const fs::path& dir, std::uint64_t segment_bytes = 1u << 20) {
  std::error_code ec;
  auto log = commit_log::open(dir, segment_bytes, ec);
  REQUIRE(log);
  REQUIRE_FALSE(ec);
  return log;
}

std::string payload_of(int i, std::size_t value_bytes = 100) {
  std::string p;
  commit_log::add_put(p, 7, "k" + std::to_string(i), std::string(value_bytes, static_cast<char>('a' + i % 26)));
  commit_log::add_del(p, 2, "gone" + std::to_string(i));
  return p;
}

std::vector<std::string> replayed(const commit_log& log, std::uint64_t from_seq) {
  std::vector<std::string> out;
  auto ec = log.replay(from_seq, [&](std::string_view payload, const commit_log::table_map& t) {
    CHECK(t == tables);
    out.emplace_back(payload);
    return std::error_code{};
  });
  CHECK_FALSE(ec);
  return out;
}

TEST_CASE("crc32c: the standard check value, and the instruction and the table agree", "[storage][commit_log]") {
  const std::string check = "123456789";
  CHECK(detail::crc32c(check.data(), check.size()) == 0xE3069283u);
  CHECK(detail::crc32c_table(check.data(), check.size()) == 0xE3069283u);
  std::mt19937 rng(7);
  std::string data(5000, '\0');
  for (auto& c : data)
    c = static_cast<char>(rng());
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 4999u}) {
    INFO("bytes " << n);
    CHECK(detail::crc32c(data.data(), n) == detail::crc32c_table(data.data(), n));
    // Continued over two pieces, the same as over the whole.
    const std::size_t half = n / 2;
    CHECK(detail::crc32c(data.data() + half, n - half, detail::crc32c(data.data(), half)) ==
          detail::crc32c(data.data(), n));
    CHECK(detail::crc32c_table(data.data() + half, n - half, detail::crc32c_table(data.data(), half)) ==
          detail::crc32c_table(data.data(), n));
  }
}

TEST_CASE("a payload's operations read back in order, and a damaged one is refused", "[storage][commit_log]") {
  std::string p;
  commit_log::add_put(p, 3, "key", "value");
  commit_log::add_del(p, 4, "old");
  commit_log::add_put(p, 5, "", "");
  std::vector<std::tuple<commit_log::op_kind, MDB_dbi, std::string, std::string>> ops;
  auto collect = [&](commit_log::op_kind k, MDB_dbi d, std::string_view key, std::string_view value) {
    ops.emplace_back(k, d, std::string(key), std::string(value));
    return true;
  };
  REQUIRE_FALSE(commit_log::for_each_op(p, collect));
  REQUIRE(ops.size() == 3);
  CHECK(ops[0] == std::make_tuple(commit_log::op_kind::put, MDB_dbi{3}, std::string("key"), std::string("value")));
  CHECK(ops[1] == std::make_tuple(commit_log::op_kind::del, MDB_dbi{4}, std::string("old"), std::string()));
  CHECK(ops[2] == std::make_tuple(commit_log::op_kind::put, MDB_dbi{5}, std::string(), std::string()));
  for (std::size_t cut = 1; cut < p.size(); ++cut) {
    if (cut == 8 + 3 + 5 || cut == 8 + 3 + 5 + 8 + 3)
      continue;  // a whole number of operations
    INFO("cut at " << cut);
    CHECK(commit_log::for_each_op(std::string_view(p).substr(0, cut), [](auto, auto, auto, auto) { return true; }) ==
          make_error_code(errc::corrupt));
  }
  std::string bad = p;
  bad[0] = 9;  // no such kind
  CHECK(commit_log::for_each_op(bad, [](auto, auto, auto, auto) { return true; }) == make_error_code(errc::corrupt));
}

TEST_CASE("records replay in order across segments, and a reopened log finds them", "[storage][commit_log]") {
  test::temp_dir tmp;
  std::uint64_t first = 0;
  {
    auto log = open_log(tmp.path(), 1u << 20);
    std::error_code ec;
    first = log->rotate(tables, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(first == 1);
    // ~1.2 KB records in 1 MiB segments: three segments and more.
    for (int i = 0; i < 2500; ++i)
      REQUIRE_FALSE(log->append_sync(payload_of(i, 1200)));
    CHECK(log->current_seq() >= 3);
    const auto in_memory = replayed(*log, first);
    REQUIRE(in_memory.size() == 2500);
    CHECK(in_memory[1234] == payload_of(1234, 1200));
  }
  auto log = open_log(tmp.path(), 1u << 20);
  const auto all = replayed(*log, first);
  REQUIRE(all.size() == 2500);
  for (int i : {0, 1, 999, 2499})
    CHECK(all[static_cast<std::size_t>(i)] == payload_of(i, 1200));
  // From a later segment on: only its records and those after.
  const auto later = replayed(*log, first + 1);
  CHECK(later.size() < 2500);
  CHECK(later.back() == payload_of(2499, 1200));
}

TEST_CASE("a torn last record ends the replay before it", "[storage][commit_log]") {
  test::temp_dir tmp;
  fs::path segment;
  {
    auto log = open_log(tmp.path());
    std::error_code ec;
    log->rotate(tables, ec);
    for (int i = 0; i < 10; ++i)
      REQUIRE_FALSE(log->append_sync(payload_of(i)));
  }
  for (const auto& e : fs::directory_iterator(tmp.path()))
    if (e.path().filename().string().rfind("seg-", 0) == 0)
      segment = e.path();
  REQUIRE_FALSE(segment.empty());
  // One record is 24 + 8 + 2 + 100 + 8 + 5 bytes; a byte of the last one's payload flips.
  const std::size_t record = 24 + payload_of(9).size();
  int fd = ::open(segment.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  const off_t at = static_cast<off_t>(4096 + 9 * record + 24 + 20);
  char c = 0;
  REQUIRE(::pread(fd, &c, 1, at) == 1);
  c ^= 0x40;
  REQUIRE(::pwrite(fd, &c, 1, at) == 1);
  ::close(fd);
  auto log = open_log(tmp.path());
  const auto got = replayed(*log, 1);
  REQUIRE(got.size() == 9);
  CHECK(got[8] == payload_of(8));
}

/// A log in `dir` holding records 0 and 1, the second rolled back (its commit failed).
std::unique_ptr<commit_log> second_rolled_back(const fs::path& dir) {
  auto log = open_log(dir);
  std::error_code ec;
  log->rotate(tables, ec);
  REQUIRE_FALSE(ec);
  REQUIRE_FALSE(log->append_sync(payload_of(0)));
  REQUIRE_FALSE(log->append_sync(payload_of(1)));
  log->rollback();
  return log;
}

TEST_CASE("a rolled-back record is void on disk after sync, and the next record takes its place",
          "[storage][commit_log]") {
  test::temp_dir tmp;
  REQUIRE_FALSE(second_rolled_back(tmp.path())->sync());
  CHECK(replayed(*open_log(tmp.path()), 1) == std::vector<std::string>{payload_of(0)});
  // Rolled back, then overwritten by the next record before any sync.
  test::temp_dir tmp2;
  auto log = second_rolled_back(tmp2.path());
  REQUIRE_FALSE(log->append_sync(payload_of(2)));
  CHECK(replayed(*log, 1) == std::vector<std::string>{payload_of(0), payload_of(2)});
}

TEST_CASE("a recycled segment's old records do not replay under its new sequence", "[storage][commit_log]") {
  test::temp_dir tmp;
  std::uint64_t second = 0;
  {
    auto log = open_log(tmp.path());
    std::error_code ec;
    log->rotate(tables, ec);
    for (int i = 0; i < 50; ++i)
      REQUIRE_FALSE(log->append_sync(payload_of(i)));
    second = log->rotate(tables, ec);
    REQUIRE(second == 2);
    log->recycle_below(second);  // segment 1 becomes a spare
    const auto third = log->rotate(tables, ec);  // and is reused as segment 3
    REQUIRE(third == 3);
    REQUIRE_FALSE(log->append_sync(payload_of(100)));
    const auto files = std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator());
    CHECK(files == 2);  // segments 2 and 3, no third file
  }
  auto log = open_log(tmp.path());
  CHECK(replayed(*log, 1) == std::vector<std::string>{payload_of(100)});
}

TEST_CASE("the checkpoint file reads back what was written, and a damaged one is refused", "[storage][commit_log]") {
  test::temp_dir tmp;
  std::error_code ec;
  CHECK_FALSE(commit_log::read_checkpoint(tmp.path(), ec));
  CHECK_FALSE(ec);
  commit_log::checkpoint c{42, 7, std::string(4096, 'm')};
  REQUIRE_FALSE(commit_log::write_checkpoint(tmp.path(), c));
  auto back = commit_log::read_checkpoint(tmp.path(), ec);
  REQUIRE(back);
  CHECK(back->txnid == 42);
  CHECK(back->from_seq == 7);
  CHECK(back->meta_page == c.meta_page);
  CHECK_FALSE(fs::exists(tmp / "checkpoint.tmp"));
  {
    int fd = ::open((tmp / "checkpoint").c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, "x", 1, 100) == 1);
    ::close(fd);
  }
  CHECK_FALSE(commit_log::read_checkpoint(tmp.path(), ec));
  CHECK(ec == make_error_code(errc::corrupt));
}

TEST_CASE("LMDB's meta pages read as lmdb_meta expects: the newest names the last transaction",
          "[storage][commit_log]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  for (int i = 0; i < 3; ++i)
    REQUIRE_FALSE(e->commit([&](write_txn& tx) { meta_table::put(tx, "k" + std::to_string(i), "v"); }));
  MDB_envinfo info{};
  REQUIRE(mdb_env_info(e->get(), &info) == MDB_SUCCESS);
  int fd = ::open((tmp / "data.mdb").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  std::string page0, page1;
  REQUIRE_FALSE(detail::read_meta_pages(fd, page0, page1));
  ::close(fd);
  auto m0 = detail::parse_meta(page0);
  auto m1 = detail::parse_meta(page1);
  REQUIRE(m0);
  REQUIRE(m1);
  CHECK(m0->page_size == static_cast<std::uint32_t>(::sysconf(_SC_PAGESIZE)));
  const auto& newest = m0->txnid > m1->txnid ? m0 : m1;
  CHECK(newest->txnid == info.me_last_txnid);
  CHECK(newest->last_pgno == info.me_last_pgno);
  CHECK(std::max(m0->txnid, m1->txnid) - std::min(m0->txnid, m1->txnid) == 1);
  CHECK(detail::meta_page_of(page0, page1, info.me_last_txnid));
  CHECK_FALSE(detail::meta_page_of(page0, page1, info.me_last_txnid + 5));
  CHECK_FALSE(detail::parse_meta(std::string(4096, '\0')));
}

}  // namespace
}  // namespace nudge::storage
