// The journal's two ways to a commit: the writer thread, and the submitting thread
// itself (submit_here) when no commit runs and nothing needs a wait on the disk.
#include <catch2/catch.hpp>

#include "actors/journal.hpp"
#include "storage/dedupe_table.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/journal_table.hpp"
#include "storage/meta_table.hpp"
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

/// Waits (bounded) for the writer's first allocation ahead: until then a commit on
/// the caller's thread would be left to the writer.
void wait_for_first_allocation(storage::env& e) {
  for (int i = 0; i < 500 && e.stats().allocated_bytes == 0; ++i)
    std::this_thread::sleep_for(10ms);
}

/// The highest seq the journal stores for `profile` (0: none).
std::uint64_t stored_last_seq(storage::env& e, const std::string& profile) {
  auto tx = e.read();
  std::error_code ec;
  std::uint64_t seq = 0;
  storage::journal_table::scan(tx, [&](const storage::journal_table::entry_header& h) {
    if (h.profile_id == profile)
      seq = std::max(seq, h.seq);
    return true;
  }, ec);
  REQUIRE(!ec);
  return seq;
}

write_record snapshot_for(const std::string& profile, std::uint64_t seq) {
  write_record rec;
  rec.profile_id = profile;
  policies::profile_state state;
  state.id = profile;
  rec.snapshot = std::make_shared<const storage::profile_snapshot>(storage::profile_snapshot{state, seq});
  return rec;
}

/// record_for(profile, seq) carrying the profile's snapshot at `seq` (its first record).
write_record record_with_snapshot(const std::string& profile, std::uint64_t seq) {
  auto rec = record_for(profile, seq);
  rec.snapshot = snapshot_for(profile, seq).snapshot;
  return rec;
}

/// Submits `recs` and waits (bounded) until all settled; true when all committed.
bool commit_all(journal& j, std::vector<write_record> recs) {
  std::mutex m;
  std::condition_variable cv;
  std::size_t ok = 0;
  std::size_t settled = 0;
  const std::size_t n = recs.size();
  for (auto& rec : recs) {
    rec.on_done = [&](bool committed) {
      std::lock_guard<std::mutex> guard(m);
      ok += committed ? 1 : 0;
      ++settled;
      cv.notify_all();
    };
    j.submit(std::move(rec));
  }
  return wait_for(m, cv, [&] { return settled == n; }) && ok == n;
}

bool commit_one(journal& j, write_record rec) {
  std::vector<write_record> recs;
  recs.push_back(std::move(rec));
  return commit_all(j, std::move(recs));
}

std::vector<std::uint64_t> stored_positions(storage::env& e) {
  std::vector<std::uint64_t> out;
  auto tx = e.read();
  std::error_code ec;
  storage::journal_table::scan(tx, [&](const storage::journal_table::entry_header& h) {
    out.push_back(h.position);
    return true;
  }, ec);
  return out;
}

TEST_CASE("in process durability submit_here commits on the caller's thread before it returns",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e);
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

TEST_CASE("commits on the caller's thread wake the writer to allocate ahead before they would wait for it",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_initial = 64ull << 20;
  o.preallocate_ahead = 8ull << 20;
  o.reader_check_interval = std::chrono::hours(1);  // no periodic upkeep takes the baton
  auto e = test::open_env(o);
  journal j(*e);
  // The writer allocates ahead as it starts; a commit before that would be left to it
  // (and read back before it ran, on a loaded machine).
  wait_for_first_allocation(*e);
  REQUIRE(e->stats().allocated_bytes > 0);
  // Every record goes through submit_here, so the writer never holds the commit baton
  // here (a record it committed would hand it the ones submitted meanwhile).
  j.submit_here(record_for("p-0", 1));
  REQUIRE(stored_last_seq(*e, "p-0") == 1);
  const auto start = e->stats();
  // Large records committed here until a quarter of the allocation ahead is used but
  // not half: no commit needs the allocation yet, and none made it.
  const std::string bulky(16 * 1024, 'y');
  std::uint64_t seq = 1;
  bool all_here = true;
  std::size_t committed = 0;
  const auto test_thread = std::this_thread::get_id();
  while (e->stats().map_used_bytes < start.map_used_bytes + (5ull << 19) && seq < 2000) {
    auto rec = record_for("p-0", ++seq);
    rec.entry = test::sample_entry(seq, "/" + bulky);  // a 16 KiB message id
    rec.on_done = [&](bool ok) {
      all_here = all_here && std::this_thread::get_id() == test_thread;
      committed += ok ? 1 : 0;
    };
    j.submit_here(std::move(rec));
  }
  REQUIRE(e->stats().map_used_bytes < start.map_used_bytes + (4ull << 20));
  CHECK(all_here);
  CHECK(committed == seq - 1);
  // The writer tops up meanwhile, without a commit of its own (bounded wait).
  for (int i = 0; i < 500 && e->stats().allocated_bytes == start.allocated_bytes; ++i)
    std::this_thread::sleep_for(10ms);
  const auto s = e->stats();
  INFO("used " << s.map_used_bytes << ", allocated " << s.allocated_bytes << " (from " << start.allocated_bytes << ")");
  CHECK(s.allocated_bytes >= s.map_used_bytes + o.preallocate_ahead * 3 / 4);
  CHECK(stored_last_seq(*e, "p-0") == seq);
  j.stop();
}

TEST_CASE("records submitted under defer_here wait for flush_here, then commit together on the caller's thread",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e);
  {
    // The writer thread first commits one record and goes back to its wait (a writer
    // that has not reached it yet would take whatever is pending when it does).
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    auto rec = record_for("p-0", 1);
    rec.on_done = [&](bool) {
      std::lock_guard<std::mutex> guard(m);
      done = true;
      cv.notify_all();
    };
    j.submit(std::move(rec));
    REQUIRE(wait_for(m, cv, [&] { return done; }));
    std::this_thread::sleep_for(100ms);
  }
  std::vector<std::thread::id> ran_on;
  journal::defer_here(true);
  for (int i = 1; i <= 3; ++i) {
    auto rec = record_for("p-" + std::to_string(i), 1);
    rec.on_done = [&](bool ok) {
      if (ok)
        ran_on.push_back(std::this_thread::get_id());
    };
    j.submit_here(std::move(rec));
  }
  // Nothing is committed yet, and the writer thread was not woken for it.
  std::this_thread::sleep_for(50ms);
  CHECK(ran_on.empty());
  CHECK(j.stats().commits == 1);
  CHECK(stored_last_seq(*e, "p-1") == 0);
  journal::defer_here(false);
  j.flush_here();
  REQUIRE(ran_on.size() == 3);
  for (const auto& id : ran_on)
    CHECK(id == std::this_thread::get_id());
  CHECK(j.stats().commits == 2);
  CHECK(j.stats().records == 4);
  CHECK(stored_last_seq(*e, "p-3") == 1);
  j.stop();
}

TEST_CASE("a batch's replies kept by time are stored in key order, filling whole leaves", "[actors][journal]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_initial = 64ull << 20;  // no map growth within the batch
  o.prefault = false;                // the writer, idle, does not look at the queue
  auto e = test::open_env(o);
  journal j(*e);
  // The writer's first allocation, before the batch, and the writer back in its wait
  // (on its way there it would take what is queued).
  wait_for_first_allocation(*e);
  std::this_thread::sleep_for(100ms);
  const auto commits_before = j.stats().commits;
  constexpr int n = 2000;
  const std::string reply(300, 'r');  // about a retail decision's reply
  const auto now = test::at_ms(1'700'000'000'000);
  const auto hash_of = [](int i) { return (static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ull) >> 1; };
  std::mutex m;
  std::condition_variable cv;
  int done = 0;
  // One batch: accepted over 50 ms, 40 to a millisecond, their hashes (the key's second
  // part) in no order, as a commit of many connections' messages has them.
  journal::defer_here(true);
  for (int i = 0; i < n; ++i) {
    write_record rec;
    rec.profile_id = "p-" + std::to_string(i % 100);
    rec.dedupe = storage::dedupe_entry{now + std::chrono::milliseconds(i / 40), rec.profile_id, reply};
    rec.dedupe_by_time = true;
    rec.dedupe_hash = hash_of(i);
    rec.dedupe_source = "web";
    rec.dedupe_id = "m-" + std::to_string(i);
    rec.on_done = [&](bool ok) {
      std::lock_guard<std::mutex> guard(m);
      done += ok ? 1 : 0;
      cv.notify_all();
    };
    j.submit_here(std::move(rec));
  }
  journal::defer_here(false);
  j.flush_here();
  REQUIRE(wait_for(m, cv, [&] { return done == n; }));
  REQUIRE(j.stats().commits == commits_before + 1);
  auto tx = e->read();
  MDB_stat st{};
  REQUIRE(mdb_stat(tx.get(), e->dedupe_by_time(), &st) == MDB_SUCCESS);
  CHECK(st.ms_entries == n);
  // ~360 B an entry: 11 to a full leaf; a leaf split in half keeps 5 or 6.
  INFO("leaves: " << st.ms_leaf_pages);
  CHECK(st.ms_leaf_pages <= n / 10 + 2);
  std::error_code ec;
  for (int i = 0; i < n; i += 37) {
    auto got = storage::dedupe_table::get_by_time(tx, now + std::chrono::milliseconds(i / 40), hash_of(i), "web",
                                                  "m-" + std::to_string(i), ec);
    REQUIRE(got.has_value());
    CHECK(got->profile_id == "p-" + std::to_string(i % 100));
  }
  CHECK(!ec);
  j.stop();
}

TEST_CASE("flush_here(true) leaves the batch to the writer thread, however small", "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e);
  // The writer thread first commits one record and goes back to its wait.
  REQUIRE(commit_one(j, record_for("p-0", 1)));
  std::this_thread::sleep_for(100ms);
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::thread::id> ran_on;
  journal::defer_here(true);
  for (int i = 1; i <= 2; ++i) {
    auto rec = record_for("p-" + std::to_string(i), 1);
    rec.on_done = [&](bool ok) {
      std::lock_guard<std::mutex> guard(m);
      if (ok)
        ran_on.push_back(std::this_thread::get_id());
      cv.notify_all();
    };
    j.submit_here(std::move(rec));
  }
  journal::defer_here(false);
  j.flush_here(true);
  REQUIRE(wait_for(m, cv, [&] { return ran_on.size() == 2; }));
  for (const auto& id : ran_on)
    CHECK(id != std::this_thread::get_id());
  CHECK(stored_last_seq(*e, "p-2") == 1);
  CHECK(j.stats().commits == 2);
  j.stop();
}

TEST_CASE("a batch puts each meta key once, with the value of the last record that carries it",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e);
  // The writer thread commits one record first and goes back to its wait, so that the
  // records below wait for flush_here and commit as one batch.
  REQUIRE(commit_one(j, record_for("p-0", 1)));
  std::this_thread::sleep_for(100ms);
  const auto commits_before = j.stats().commits;
  journal::defer_here(true);
  auto with_meta = [](const std::string& profile, std::vector<std::pair<std::string, std::string>> meta) {
    auto rec = record_for(profile, 1);
    rec.meta = std::move(meta);
    return rec;
  };
  j.submit_here(with_meta("p-1", {{"counter:a", "1"}, {"holdout_stats", "h1"}}));
  j.submit_here(with_meta("p-2", {{"counter:b", "b2"}, {"counter:a", "2"}}));
  j.submit_here(with_meta("p-3", {{"holdout_stats", "h3"}, {"counter:c", "c-old"}, {"counter:c", "c-new"}}));
  j.submit_here(with_meta("p-4", {}));
  journal::defer_here(false);
  j.flush_here();
  CHECK(j.stats().commits == commits_before + 1);
  auto tx = e->read();
  CHECK(storage::meta_table::get(tx, "counter:a") == std::optional<std::string>("2"));
  CHECK(storage::meta_table::get(tx, "counter:b") == std::optional<std::string>("b2"));
  CHECK(storage::meta_table::get(tx, "counter:c") == std::optional<std::string>("c-new"));
  CHECK(storage::meta_table::get(tx, "holdout_stats") == std::optional<std::string>("h3"));
  CHECK(stored_last_seq(*e, "p-4") == 1);
  j.stop();
}

TEST_CASE("the meta source is asked once per commit that writes, and its values win over the records'",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e);
  int calls = 0;
  j.on_meta([&calls](std::vector<std::pair<std::string, std::string>>& out) {
    ++calls;
    out.emplace_back("holdout_stats", "source-" + std::to_string(calls));
    if (calls == 2)
      out.emplace_back("counter:a", "from-source");
  });
  // First commit: the source's holdout_stats only.
  REQUIRE(commit_one(j, record_for("p-0", 1)));
  CHECK(calls == 1);
  {
    auto tx = e->read();
    CHECK(storage::meta_table::get(tx, "holdout_stats") == std::optional<std::string>("source-1"));
  }
  std::this_thread::sleep_for(100ms);
  // Second: one batch of three records, two of them with meta of their own. The source
  // is asked once; its keys win, the records' other keys are put as before.
  const auto commits_before = j.stats().commits;
  journal::defer_here(true);
  for (int i = 1; i <= 3; ++i) {
    auto rec = record_for("p-" + std::to_string(i), 1);
    if (i < 3)
      rec.meta = {{"counter:a", "record-" + std::to_string(i)}, {"counter:b", "b" + std::to_string(i)}};
    j.submit_here(std::move(rec));
  }
  journal::defer_here(false);
  j.flush_here();
  CHECK(j.stats().commits == commits_before + 1);
  CHECK(calls == 2);
  {
    auto tx = e->read();
    CHECK(storage::meta_table::get(tx, "holdout_stats") == std::optional<std::string>("source-2"));
    CHECK(storage::meta_table::get(tx, "counter:a") == std::optional<std::string>("from-source"));
    CHECK(storage::meta_table::get(tx, "counter:b") == std::optional<std::string>("b2"));
  }
  // A batch of markers alone writes nothing and does not ask.
  write_record marker;
  marker.marker = true;
  REQUIRE(commit_one(j, std::move(marker)));
  CHECK(calls == 2);
  j.stop();
}

TEST_CASE("a commit that fails keeps the meta source's changes for the next one", "[actors][journal]") {
  test::temp_dir tmp;
  auto o = test::options_for(tmp.path());
  o.map_size_max = 4ull << 20;
  auto e = test::open_env(o);
  journal j(*e);
  int calls = 0;
  j.on_meta([&calls](std::vector<std::pair<std::string, std::string>>& out) {
    if (++calls == 1)
      out.emplace_back("counter:a", "taken-by-the-failed-commit");
  });
  // A record larger than the map: the commit fails (map full) and is not sticky.
  auto huge = record_for("p-huge", 1);
  huge.entry->message_id.assign(8u << 20, 'x');
  CHECK_FALSE(commit_one(j, std::move(huge)));
  CHECK(calls == 1);
  {
    auto tx = e->read();
    CHECK_FALSE(storage::meta_table::get(tx, "counter:a"));
  }
  // The next commit puts what the failed one took, though the source has nothing new.
  REQUIRE(commit_one(j, record_for("p-1", 1)));
  CHECK(calls == 2);
  {
    auto tx = e->read();
    CHECK(storage::meta_table::get(tx, "counter:a") == std::optional<std::string>("taken-by-the-failed-commit"));
  }
  CHECK(j.stats().failed_records == 1);
  j.stop();
}

TEST_CASE("an erasure is committed by the writer thread, not by the submitting thread", "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e);
  j.submit_here(record_for("p-1", 1));
  std::mutex m;
  std::condition_variable cv;
  std::thread::id ran_on;
  bool done = false;
  write_record rec;
  rec.profile_id = "p-1";
  rec.erase = std::make_shared<erasure_request>();
  rec.erase->profile_id = "p-1";
  rec.on_done = [&](bool) {
    std::lock_guard<std::mutex> guard(m);
    ran_on = std::this_thread::get_id();
    done = true;
    cv.notify_all();
  };
  j.submit_here(std::move(rec));
  REQUIRE(wait_for(m, cv, [&] { return done; }));
  CHECK(ran_on != std::this_thread::get_id());
  CHECK(stored_last_seq(*e, "p-1") == 0);
  j.stop();
}

TEST_CASE("in power durability submit_here leaves the commit and its sync to the writer thread",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto options = test::options_for(tmp.path());
  options.sync_each_commit = true;
  auto e = test::open_env(options);
  journal j(*e);
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
  journal j(*e);
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
    CHECK(j.index().positions("p-" + std::to_string(t)).size() == per_thread);
  }
  const auto stats = j.stats();
  CHECK(stats.records == threads * per_thread);
  CHECK(stats.failed_records == 0);
  j.stop();
}

/// The profiles a journal asked for a snapshot, in order (its checkpoint handler).
class checkpoint_asks {
public:
  explicit checkpoint_asks(journal& j) {
    j.on_checkpoint([this](std::vector<std::string> ids) {
      std::lock_guard<std::mutex> guard(m_);
      asked_.insert(asked_.end(), ids.begin(), ids.end());
    });
  }
  std::vector<std::string> now() const {
    std::lock_guard<std::mutex> guard(m_);
    return asked_;
  }

private:
  mutable std::mutex m_;
  std::vector<std::string> asked_;
};

TEST_CASE("journal entries stay live until their profile's snapshot and the journal drops those below the oldest live one",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e);
  std::vector<write_record> recs;
  recs.push_back(record_for("p-a", 1));  // position 1
  recs.push_back(record_for("p-b", 1));  // 2
  recs.push_back(record_for("p-a", 2));  // 3
  REQUIRE(commit_all(j, std::move(recs)));
  CHECK(j.index().positions("p-a") == std::vector<std::uint64_t>{1, 3});
  CHECK(j.index().positions("p-b") == std::vector<std::uint64_t>{2});
  CHECK(j.index().low_water(4) == 1);

  REQUIRE(commit_one(j, snapshot_for("p-a", 2)));
  CHECK(j.index().positions("p-a").empty());
  CHECK(j.index().low_water(4) == 2);
  CHECK(j.stats().live_entries == 1);
  // The next commit drops position 1 (below p-b's entry); position 3, dead but above
  // it, waits until p-b's entry is covered too.
  REQUIRE(commit_one(j, record_for("p-c", 1)));  // 4
  CHECK(stored_positions(*e) == std::vector<std::uint64_t>{2, 3, 4});
  std::vector<write_record> covers;
  covers.push_back(snapshot_for("p-b", 1));
  covers.push_back(snapshot_for("p-c", 1));
  REQUIRE(commit_all(j, std::move(covers)));
  REQUIRE(commit_one(j, record_for("p-a", 3)));  // 5
  CHECK(stored_positions(*e) == std::vector<std::uint64_t>{5});
  CHECK(j.index().positions("p-a") == std::vector<std::uint64_t>{5});
  j.stop();
}

TEST_CASE("a merge and an erasure cover the entries of the profiles they remove", "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal j(*e);
  std::vector<write_record> recs;
  recs.push_back(record_for("p-loser", 1));
  recs.push_back(record_for("p-erased", 1));
  recs.push_back(record_for("p-kept", 1));
  REQUIRE(commit_all(j, std::move(recs)));
  std::vector<write_record> removals;
  auto merge = snapshot_for("p-survivor", 1);
  merge.merged_away = {"p-loser"};
  removals.push_back(std::move(merge));
  write_record erase;
  erase.profile_id = "p-erased";
  erase.erase = std::make_shared<erasure_request>();
  erase.erase->profile_id = "p-erased";
  removals.push_back(std::move(erase));
  REQUIRE(commit_all(j, std::move(removals)));
  CHECK(j.index().positions("p-loser").empty());
  CHECK(j.index().positions("p-erased").empty());
  CHECK(j.index().positions("p-kept") == std::vector<std::uint64_t>{3});
  // The erased profile's entry left the journal at once; the loser's is dead and goes
  // once it is the oldest (in the erasure's commit, when the writer split the batch).
  CHECK(stored_last_seq(*e, "p-erased") == 0);
  auto stored = stored_positions(*e);
  CHECK((stored == std::vector<std::uint64_t>{1, 3} || stored == std::vector<std::uint64_t>{3}));
  REQUIRE(commit_one(j, record_for("p-kept", 2)));
  CHECK(stored_positions(*e) == std::vector<std::uint64_t>{3, 4});
  j.stop();
}

TEST_CASE("a journal opened again indexes the entries above each profile's snapshot", "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  {
    journal j(*e);
    std::vector<write_record> recs;
    recs.push_back(record_with_snapshot("p-a", 1));  // position 1, with the profile's first snapshot
    recs.push_back(record_for("p-gone", 1));  // 2: no snapshot (merged away or erased)
    recs.push_back(record_for("p-a", 2));     // 3
    recs.push_back(record_for("p-a", 3));     // 4
    REQUIRE(commit_all(j, std::move(recs)));
    j.stop();
    // A clean stop drops what lies below the oldest live entry (p-gone's, to this index).
    CHECK(stored_positions(*e) == std::vector<std::uint64_t>{2, 3, 4});
  }
  journal again(*e);
  REQUIRE(!again.start_error());
  CHECK(again.index().positions("p-a") == std::vector<std::uint64_t>{3, 4});
  CHECK(again.index().positions("p-gone").empty());
  CHECK(again.stats().live_entries == 2);
  // New entries continue after the last stored position.
  REQUIRE(commit_one(again, record_for("p-a", 4)));
  CHECK(again.index().positions("p-a") == std::vector<std::uint64_t>{3, 4, 5});
  again.stop();
}

TEST_CASE("a journal opened again indexes interleaved profiles each from above its own snapshot",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  {
    journal j(*e);
    std::vector<write_record> recs;
    recs.push_back(record_with_snapshot("p-b", 1));  // position 1: before p-a's, after it in key order
    recs.push_back(record_with_snapshot("p-a", 1));  // 2
    recs.push_back(record_for("p-b", 2));  // 3
    recs.push_back(record_for("p-a", 2));  // 4
    recs.push_back(record_for("p-c", 1));  // 5: no snapshot, dead
    recs.push_back(record_for("p-b", 3));  // 6
    recs.push_back(record_for("p-a", 3));  // 7
    REQUIRE(commit_all(j, std::move(recs)));
    j.stop();
  }
  journal again(*e);
  REQUIRE(!again.start_error());
  CHECK(again.index().positions("p-a") == std::vector<std::uint64_t>{4, 7});
  CHECK(again.index().positions("p-b") == std::vector<std::uint64_t>{3, 6});
  CHECK(again.index().positions("p-c").empty());
  CHECK(again.stats().live_entries == 4);
  CHECK(again.index().live_profiles() == 2);
  CHECK(again.index().low_water(100) == 3);  // p-b's oldest live entry
  REQUIRE(commit_one(again, record_for("p-b", 4)));
  CHECK(again.index().positions("p-b") == std::vector<std::uint64_t>{3, 6, 8});
  again.stop();
}

TEST_CASE("a clean stop drops the dead entries above the oldest live one and a start reads only live ones",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  {
    journal j(*e);
    std::vector<write_record> recs;
    recs.push_back(record_with_snapshot("p-old", 1));  // position 1
    recs.push_back(record_for("p-old", 2));            // 2: live until the stop
    for (int i = 0; i < 6; ++i)                        // 3-8: live until covered below
      recs.push_back(record_for("p-" + std::to_string(i), 1));
    recs.push_back(record_with_snapshot("p-late", 1));  // 9
    recs.push_back(record_for("p-late", 2));            // 10: live
    REQUIRE(commit_all(j, std::move(recs)));
    // Snapshots cover p-0 .. p-5 (as passivations or checkpoints do); p-old and p-late
    // keep a live entry each, as profiles that did not leave before the stop.
    std::vector<write_record> covers;
    for (int i = 0; i < 6; ++i)
      covers.push_back(snapshot_for("p-" + std::to_string(i), 1));
    REQUIRE(commit_all(j, std::move(covers)));
    CHECK(j.index().all_positions() == std::vector<std::uint64_t>{2, 10});
    j.stop();
    CHECK(stored_positions(*e) == std::vector<std::uint64_t>{2, 10});
  }
  journal again(*e);
  REQUIRE(!again.start_error());
  CHECK(again.index().positions("p-old") == std::vector<std::uint64_t>{2});
  CHECK(again.index().positions("p-late") == std::vector<std::uint64_t>{10});
  CHECK(again.stats().live_entries == 2);
  CHECK(again.index().low_water(100) == 2);
  // New entries go on after the last stored one.
  REQUIRE(commit_one(again, record_for("p-late", 3)));
  CHECK(again.index().positions("p-late") == std::vector<std::uint64_t>{10, 11});
  again.stop();
  CHECK(stored_positions(*e) == std::vector<std::uint64_t>{2, 10, 11});
}

TEST_CASE("a journal opened again over thousands of profiles indexes every one of them from above its snapshot",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  constexpr int profiles = 13000;  // 8,666 left with a live entry
  auto name = [](int i) { return "p-" + std::to_string(i); };
  {
    journal j(*e);
    std::vector<write_record> recs;
    for (int i = 0; i < profiles; ++i) {
      recs.push_back(record_with_snapshot(name(i), 1));  // position 2i + 1: dead
      recs.push_back(record_for(name(i), 2));            // 2i + 2: live unless covered below
    }
    REQUIRE(commit_all(j, std::move(recs)));
    std::vector<write_record> covers;
    for (int i = 0; i < profiles; i += 3)
      covers.push_back(snapshot_for(name(i), 2));
    REQUIRE(commit_all(j, std::move(covers)));
    j.stop();
  }
  journal again(*e);
  REQUIRE(!again.start_error());
  CHECK(again.index().live_profiles() == 8666);
  CHECK(again.stats().live_entries == 8666);
  int wrong = 0;
  for (int i = 0; i < profiles; ++i) {
    const auto expected = i % 3 == 0 ? std::vector<std::uint64_t>{}
                                     : std::vector<std::uint64_t>{static_cast<std::uint64_t>(2 * i + 2)};
    wrong += again.index().positions(name(i)) == expected ? 0 : 1;
  }
  CHECK(wrong == 0);
  again.stop();
}

TEST_CASE("an unreadable snapshot keeps its profile's entries live and the journal starts", "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  {
    journal j(*e);
    std::vector<write_record> recs;
    recs.push_back(record_with_snapshot("p-x", 1));
    recs.push_back(record_for("p-x", 2));
    REQUIRE(commit_all(j, std::move(recs)));
    j.stop();
  }
  REQUIRE(!e->commit([&](storage::write_txn& tx) { storage::detail::put(tx, e->profiles(), "p-x", "not msgpack"); }));
  journal again(*e);
  CHECK(!again.start_error());
  // Its entry after the snapshot (the clean stop dropped the first) stays live; its
  // activation reports the bad snapshot.
  CHECK(again.index().positions("p-x") == std::vector<std::uint64_t>{2});
  again.stop();
}

TEST_CASE("past checkpoint_profiles profiles with live entries the journal asks the oldest one per record appended",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal_options o;
  o.checkpoint_entries = 40;  // the span's pacing from 30 on
  o.checkpoint_profiles = 10;
  journal j(*e, o);
  checkpoint_asks asks(j);
  auto asked_now = [&] { return asks.now(); };
  auto name = [](int i) { return "p-" + std::to_string(i); };
  for (int i = 0; i < 10; ++i)
    REQUIRE(commit_one(j, record_for(name(i), 1)));  // positions 1..10
  CHECK(asked_now().empty());  // 10 live profiles: at the bound, not past it
  for (int i = 10; i < 15; ++i)
    REQUIRE(commit_one(j, record_for(name(i), 1)));  // 11..15: one ask each, the oldest not yet asked
  CHECK(asked_now() == std::vector<std::string>{"p-0", "p-1", "p-2", "p-3", "p-4"});
  std::vector<write_record> three;
  for (int i = 15; i < 18; ++i)
    three.push_back(record_for(name(i), 1));  // one commit of three records: three asks
  REQUIRE(commit_all(j, std::move(three)));
  CHECK(asked_now().size() == 8);
  CHECK(asked_now().back() == "p-7");
  // Snapshots append no entry, so commits of them ask nobody, over the bound or not
  // (committed one by one: a commit of several might be split by the writer anyway).
  for (int i = 0; i < 8; ++i)
    REQUIRE(commit_one(j, snapshot_for(name(i), 1)));
  CHECK(asked_now().size() == 8);
  CHECK(j.index().live_profiles() == 10);
  REQUIRE(commit_one(j, record_for("p-12", 2)));  // no new live profile: no ask
  CHECK(asked_now().size() == 8);
  CHECK(j.stats().checkpoints_asked == 8);
  j.stop();
}

TEST_CASE("the journal asks the profiles holding its oldest entries for a snapshot, paced from three quarters of "
          "the live span on, and each once per half span",
          "[actors][journal]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  journal_options o;
  o.checkpoint_entries = 8;  // pacing from a span of 6, the bound at 8
  journal j(*e, o);
  checkpoint_asks asks(j);
  auto asked_now = [&] { return asks.now(); };
  REQUIRE(commit_one(j, record_for("p-old", 1)));  // position 1
  for (std::uint64_t s = 1; s <= 6; ++s)
    REQUIRE(commit_one(j, record_for("p-busy", s)));  // positions 2..7
  // A span of 7: one record times one position over 6 is half an ask; none yet.
  CHECK(asked_now().empty());
  REQUIRE(commit_one(j, record_for("p-busy", 7)));  // position 8
  // A span of 8: two more halves make one ask, below the bound, and it goes to the
  // profile holding the oldest entry.
  CHECK(asked_now() == std::vector<std::string>{"p-old"});
  REQUIRE(commit_one(j, snapshot_for("p-busy", 8)));  // covers p-busy (no entry of its own)
  REQUIRE(commit_one(j, record_for("p-busy", 9)));    // position 9
  REQUIRE(commit_one(j, record_for("p-busy", 10)));   // position 10
  // Past the bound (spans 9 and 10) p-old is not asked again within half a span, and
  // p-busy's entries are not among the oldest quarter.
  CHECK(asked_now() == std::vector<std::string>{"p-old"});
  CHECK(j.stats().checkpoints_asked == 1);
  REQUIRE(commit_one(j, snapshot_for("p-old", 1)));
  CHECK(j.index().low_water(100) == 9);  // p-busy's first entry after its snapshot
  // After stop_checkpoints (shutdown) nobody is asked, however far the span grows.
  j.stop_checkpoints();
  for (std::uint64_t s = 1; s <= 12; ++s)
    REQUIRE(commit_one(j, record_for("p-late", s)));
  CHECK(j.stats().checkpoints_asked == 1);
  j.stop();
}

}  // namespace
}  // namespace nudge::actors
