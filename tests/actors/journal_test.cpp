// The journal's two ways to a commit: the writer thread, and the submitting thread
// itself (submit_here) when no commit runs and nothing needs a wait on the disk.
#include <catch2/catch.hpp>

#include "actors/journal.hpp"
#include "storage/journal_table.hpp"
#include "../storage/test_support.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace nudge::actors {
namespace {

using namespace std::chrono_literals;
namespace test = storage::test;

/// Waits (bounded) until `done` holds under `m`.
template <class Pred>
bool wait_for(std::mutex& m, std::condition_variable& cv, Pred done) {
  std::unique_lock<std::mutex> lock(m);
  return cv.wait_for(lock, 10s, done);
}

write_record record_for(const std::string& profile, std::uint64_t seq) {
  write_record rec;
  rec.profile_id = profile;
  rec.entry = test::sample_entry(seq, "/" + profile);
  return rec;
}

std::uint64_t stored_last_seq(storage::env& e, const std::string& profile) {
  auto tx = e.read();
  std::error_code ec;
  auto seq = storage::journal_table::last_seq(tx, profile, ec);
  REQUIRE(!ec);
  return seq;
}

TEST_CASE("in process durability submit_here commits on the caller's thread before it returns",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e, 24h);
  std::thread::id ran_on;
  bool committed = false;
  auto rec = record_for("p-1", 1);
  rec.on_done = [&](bool ok) {
    ran_on = std::this_thread::get_id();
    committed = ok;
  };
  j.submit_here(std::move(rec));
  // No wait: the record was committed, and its on_done ran, inside the call.
  CHECK(committed);
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(stored_last_seq(*e, "p-1") == 1);
  CHECK(j.stats().commits == 1);
  j.stop();
}

TEST_CASE("in power durability submit_here leaves the commit and its sync to the writer thread",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto options = test::options_for(tmp.path());
  options.sync_each_commit = true;
  auto e = test::open_env(options);
  journal j(*e, 24h);
  std::mutex m;
  std::condition_variable cv;
  std::thread::id ran_on;
  bool done = false, committed = false;
  auto rec = record_for("p-1", 1);
  rec.on_done = [&](bool ok) {
    std::lock_guard<std::mutex> guard(m);
    ran_on = std::this_thread::get_id();
    committed = ok;
    done = true;
    cv.notify_all();
  };
  j.submit_here(std::move(rec));
  REQUIRE(wait_for(m, cv, [&] { return done; }));
  CHECK(committed);
  CHECK(ran_on != std::this_thread::get_id());
  CHECK(stored_last_seq(*e, "p-1") == 1);
  j.stop();
}

TEST_CASE("records from several threads at once commit exactly once each, every thread's in submit order",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e, 24h);
  constexpr int threads = 4;
  constexpr std::uint64_t per_thread = 1500;
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::vector<std::uint64_t>> settled(threads);
  std::size_t total = 0;
  std::vector<std::thread> submitters;
  for (int t = 0; t < threads; ++t)
    submitters.emplace_back([&, t] {
      const std::string profile = "p-" + std::to_string(t);
      for (std::uint64_t seq = 1; seq <= per_thread; ++seq) {
        auto rec = record_for(profile, seq);
        rec.on_done = [&, t, seq](bool ok) {
          std::lock_guard<std::mutex> guard(m);
          if (ok)
            settled[t].push_back(seq);
          ++total;
          cv.notify_all();
        };
        // Every other record goes the writer's way: both paths share one order.
        if (seq % 2 == 0)
          j.submit(std::move(rec));
        else
          j.submit_here(std::move(rec));
      }
    });
  for (auto& s : submitters)
    s.join();
  REQUIRE(wait_for(m, cv, [&] { return total == threads * per_thread; }));
  for (int t = 0; t < threads; ++t) {
    INFO("thread " << t);
    REQUIRE(settled[t].size() == per_thread);
    bool in_order = true;
    for (std::uint64_t i = 0; i < per_thread; ++i)
      in_order = in_order && settled[t][i] == i + 1;
    CHECK(in_order);
    CHECK(stored_last_seq(*e, "p-" + std::to_string(t)) == per_thread);
  }
  const auto stats = j.stats();
  CHECK(stats.records == threads * per_thread);
  CHECK(stats.failed_records == 0);
  j.stop();
}

}  // namespace
}  // namespace nudge::actors
