// The env with its commit log ("power" durability): commits survive a killed process
// and a simulated power loss (some of the data file's pages written since the last
// checkpoint reach the disk, others do not), by rolling back to the checkpoint and
// replaying the log.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <string>

#include "storage/detail/lmdb_meta.hpp"
#include "storage/env.hpp"
#include "storage/meta_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

namespace fs = std::filesystem;

env_options log_options(const fs::path& dir) {
  auto o = test::options_for(dir);
  o.sync_each_commit = true;
  o.commit_log = true;
  o.log_segment_bytes = 1u << 20;
  o.log_checkpoint_interval = std::chrono::hours(1);  // checkpoints only when a test asks
  o.log_checkpoint_bytes = 1ull << 40;
  return o;
}

std::string value_of(int round, int i) {
  return "r" + std::to_string(round) + "-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 7) * 60, 'x');
}

std::string key_of(int i) {
  char k[16];
  std::snprintf(k, sizeof k, "d%05d", i);
  return k;
}

/// Round `round`'s writes for keys 0..n-1 with index in [first, last): round 1 puts
/// every key; later rounds rewrite a fifth of them, insert keys that sort between them
/// (so the leaves that hold keys left untouched since round 1 are rewritten too) and
/// delete some of the previous round's inserts.
template <class Put, class Del>
void ops_of_round(int round, int first, int last, Put put, Del del) {
  for (int i = first; i < last; ++i) {
    if (round == 1 || i % 5 == round % 5)
      put(key_of(i), value_of(round, i));
    if (round > 1 && i % 4 == 0)
      put(key_of(i) + "-" + std::to_string(round), "new" + std::to_string(i));
    if (round > 2 && i % 8 == 0)
      del(key_of(i) + "-" + std::to_string(round - 1));
  }
}

/// Round `round` of writes, one commit per `per_commit` keys.
void write_round(env& e, int round, int n, int per_commit) {
  for (int first = 0; first < n; first += per_commit) {
    auto ec = e.commit([&](write_txn& tx) {
      ops_of_round(
          round, first, std::min(n, first + per_commit),
          [&](const std::string& k, const std::string& v) { meta_table::put(tx, k, v); },
          [&](const std::string& k) { meta_table::erase(tx, k); });
    });
    if (ec)
      throw std::runtime_error("commit: " + ec.message());
  }
}

/// What write_round leaves after rounds 1..last.
std::map<std::string, std::string> expected_after(int last, int n) {
  std::map<std::string, std::string> m;
  for (int round = 1; round <= last; ++round)
    ops_of_round(
        round, 0, n, [&](const std::string& k, const std::string& v) { m[k] = v; },
        [&](const std::string& k) { m.erase(k); });
  return m;
}

void check_state(env& e, int last, int n) {
  const auto expected = expected_after(last, n);
  auto tx = e.read();
  std::size_t wrong = 0;
  for (const auto& [k, v] : expected)
    wrong += meta_table::get(tx, k) != v;
  // Deleted inserts stay deleted.
  for (int round = 2; round <= last; ++round)
    for (int i = 0; i < n; i += 4) {
      const auto k = key_of(i) + "-" + std::to_string(round);
      wrong += expected.count(k) == 0 && meta_table::get(tx, k).has_value();
    }
  CHECK(wrong == 0);
  CHECK(e.entries(e.meta()) == expected.size() + 1);  // and schema_version
}

/// Runs `body` in a child process that ends with _exit: no destructor runs, as when
/// the process is killed. Returns the child's exit status.
template <class F>
int in_child(F body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A child opens `dir` with the log, commits round 1 over 100 keys in 10 commits and is
/// killed (no last checkpoint): true when it got that far.
bool killed_after_one_round(const fs::path& dir) {
  return in_child([&] {
           auto e = test::open_env(log_options(dir));
           write_round(*e, 1, 100, 10);
           e.release();
         }) == 0;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_CASE("with the commit log, commits are in the log and a clean reopen replays nothing", "[storage][env][log]") {
  test::temp_dir tmp;
  const auto o = log_options(tmp.path());
  {
    auto e = test::open_env(o);
    REQUIRE(e->has_commit_log());
    CHECK(e->commits_sync());
    CHECK(e->stats().log_checkpoints == 1);  // the open's own
    write_round(*e, 1, 200, 10);
    CHECK(e->stats().log_bytes_pending > 200 * 100);
    REQUIRE_FALSE(e->checkpoint());
    CHECK(e->stats().log_checkpoints == 2);
    CHECK(e->stats().log_bytes_pending == 0);
    write_round(*e, 2, 200, 10);
  }
  CHECK(fs::exists(tmp / "log/checkpoint"));
  auto e = test::open_env(o);
  CHECK(e->stats().log_records_replayed == 0);
  check_state(*e, 2, 200);
}

TEST_CASE("with the commit log, a killed process loses no commit", "[storage][env][log][crash]") {
  test::temp_dir tmp;
  const auto o = log_options(tmp.path());
  REQUIRE(in_child([&] {
            auto e = test::open_env(o);
            write_round(*e, 1, 300, 7);
            if (e->checkpoint())
              throw std::runtime_error("checkpoint");
            write_round(*e, 2, 300, 7);
            write_round(*e, 3, 300, 7);
            e.release();  // killed: no destructor, no last checkpoint
          }) == 0);
  auto e = test::open_env(o);
  CHECK(e->stats().log_records_replayed == 2 * ((300 + 6) / 7));
  check_state(*e, 3, 300);
  // And it goes on from there: more commits, another crash, the same.
  e.reset();
  REQUIRE(in_child([&] {
            auto e2 = test::open_env(o);
            write_round(*e2, 4, 300, 50);
            e2.release();
          }) == 0);
  auto e3 = test::open_env(o);
  check_state(*e3, 4, 300);
}

TEST_CASE("with the commit log, a power loss that kept any mix of the pages written since the checkpoint loses no commit",
          "[storage][env][log][crash]") {
  const std::uint32_t seed = GENERATE(1u, 2u, 3u, 4u, 5u, 6u);
  INFO("seed " << seed);
  test::temp_dir tmp;
  const auto o = log_options(tmp.path());
  const auto at_checkpoint = tmp / "data.at-checkpoint";
  REQUIRE(in_child([&] {
            auto e = test::open_env(o);
            write_round(*e, 1, 3000, 100);
            if (e->checkpoint())
              throw std::runtime_error("checkpoint");
            // The file as the disk holds it right after the checkpoint's sync.
            fs::copy_file(tmp / "data.mdb", at_checkpoint);
            write_round(*e, 2, 3000, 10);  // many commits: pages freed and reused
            write_round(*e, 3, 3000, 100);
            // The map grew meanwhile, with the checkpoint's read transaction held.
            if (e->map_size() <= o.map_size_initial)
              throw std::runtime_error("the map did not grow");
            e.release();
          }) == 0);
  // The disk after the power loss: each page either as at the checkpoint or as last
  // written, at random; the meta pages as last written, naming a transaction whose
  // pages may be missing (the case a rollback exists for).
  std::string before = read_file(at_checkpoint);
  std::string after = read_file(tmp / "data.mdb");
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  REQUIRE(after.size() >= before.size());
  // Past the file's end at the checkpoint, a page never written back reads as zeros.
  before.resize(after.size(), '\0');
  std::mt19937 rng(seed);
  std::size_t kept_old = 0;
  for (std::size_t at = 2 * page; at + page <= before.size(); at += page)
    if (rng() % 2 == 0 && before.compare(at, page, after, at, page) != 0) {
      after.replace(at, page, before, at, page);
      ++kept_old;
    }
  INFO("pages left as at the checkpoint: " << kept_old);
  REQUIRE(kept_old > 0);
  {
    std::ofstream out(tmp / "data.mdb", std::ios::binary | std::ios::trunc);
    out.write(after.data(), static_cast<std::streamsize>(after.size()));
  }
  auto e = test::open_env(o);
  CHECK(e->stats().log_records_replayed > 0);
  check_state(*e, 3, 3000);
  // The recovered env takes more commits and reopens cleanly.
  write_round(*e, 4, 3000, 100);
  e.reset();
  auto again = test::open_env(o);
  check_state(*again, 4, 3000);
}

TEST_CASE("an env opened without the commit log replays and removes one it finds", "[storage][env][log]") {
  test::temp_dir tmp;
  REQUIRE(killed_after_one_round(tmp.path()));
  REQUIRE(fs::exists(tmp / "log/checkpoint"));
  auto plain = test::options_for(tmp.path());
  auto e = test::open_env(plain);
  CHECK_FALSE(e->has_commit_log());
  CHECK(e->stats().log_records_replayed == 10);
  check_state(*e, 1, 100);
  CHECK_FALSE(fs::exists(tmp / "log"));
}

TEST_CASE("a commit log without its data file is refused, not replayed over an empty one", "[storage][env][log]") {
  test::temp_dir tmp;
  REQUIRE(killed_after_one_round(tmp.path()));
  fs::remove(tmp / "data.mdb");
  std::error_code ec;
  CHECK_FALSE(env::open(log_options(tmp.path()), ec));
  CHECK(ec == make_error_code(errc::corrupt));
  CHECK(fs::exists(tmp / "log/checkpoint"));
}

TEST_CASE("a secondary open leaves the commit log alone", "[storage][env][log]") {
  test::temp_dir tmp;
  const auto o = log_options(tmp.path());
  auto e = test::open_env(o);
  write_round(*e, 1, 50, 10);
  auto secondary = test::options_for(tmp.path());
  secondary.secondary = true;
  {
    auto other = test::open_env(secondary);
    CHECK_FALSE(other->has_commit_log());
    CHECK(other->stats().log_records_replayed == 0);
    check_state(*other, 1, 50);
  }
  CHECK(fs::exists(tmp / "log/checkpoint"));
  write_round(*e, 2, 50, 10);
  check_state(*e, 2, 50);
}

}  // namespace
}  // namespace nudge::storage
