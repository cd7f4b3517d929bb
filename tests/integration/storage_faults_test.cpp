// Storage faults against the real binary and a real LMDB file: the map full at
// map_size_max, a disk that cannot allocate (LD_PRELOAD shim failing fallocate), a
// reader process killed mid-read, and a backup taken while connections write.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <fstream>
#include <map>
#include <set>

#include "actors/profile_logic.hpp"
#include "storage/dedupe_table.hpp"
#include "storage/journal_table.hpp"
#include "storage/env.hpp"
#include "storage/profile_table.hpp"
#include "tests/storage/test_support.hpp"

using namespace nudge::test;

namespace {

// Events are recorded in profiles only with analytics consent.
const std::string granted = "[consent]\ndefault = \"granted\"\n";

std::string event(const std::string& id, const std::string& anon, std::size_t pad = 0) {
  return R"({"type":"event","id":")" + id + R"(","name":"page_view","identities":{"anonymous_id":")" + anon +
         R"("},"properties":{"pad":")" + std::string(pad, 'p') + R"("}})";
}

std::string type_of(const rapidjson::Document& d) {
  return d.IsObject() && d.HasMember("type") && d["type"].IsString() ? d["type"].GetString() : "";
}

/// A member of an error reply, flat on the stream (`{"type":"error","code",...}`) or
/// under "error" in an HTTP answer; "" when absent.
std::string error_field(const rapidjson::Value& d, const char* name) {
  if (!d.IsObject())
    return "";
  if (d.HasMember(name) && d[name].IsString())
    return d[name].GetString();
  return d.HasMember("error") ? error_field(d["error"], name) : "";
}

std::string code_of(const rapidjson::Document& d) { return error_field(d, "code"); }

/// stats.events of the profile holding anonymous_id `anon` (0 when there is none).
std::uint64_t events_of(const server_process& srv, const std::string& anon) {
  auto p = profile_by_identity(srv, "anonymous_id:" + anon);
  return p.IsObject() && p.HasMember("stats") ? p["stats"]["events"].GetUint64() : 0;
}

rapidjson::Document storage_stats(const server_process& srv) {
  auto s = parse(admin_call(srv, "GET", "/v1/stats").body);
  rapidjson::Document out;
  out.CopyFrom(s["storage"], out.GetAllocator());
  return out;
}

http_result post_event(const server_process& srv, const std::string& body) {
  return http_call(srv.port(), "POST", "/v1/events", body,
                   {{"Authorization", "Bearer " + srv.write_key()}, {"Content-Type", "application/json"}});
}

/// Sends `count` messages from `first` (ids PREFIX-N for anons[N % size], `pad` bytes
/// of properties) in windows of 32, and tallies the replies: decisions per anon into
/// `acked`, error codes into `errors`, the refused ids into `refused` (when given).
struct tally {
  std::map<std::string, std::uint64_t> acked;
  std::map<std::string, std::size_t> errors;
  std::vector<std::string> refused;
  std::size_t decisions_after_error = 0;  ///< decisions read after the first error
};

void stream(ws_client& ws, const std::string& prefix, int first, int count, const std::vector<std::string>& anons,
            std::size_t pad, tally& t) {
  constexpr int window = 32;
  for (int base = first; base < first + count; base += window) {
    const int n = std::min(window, first + count - base);
    for (int i = base; i < base + n; ++i)
      REQUIRE(ws.send(event(prefix + std::to_string(i), anons[static_cast<std::size_t>(i) % anons.size()], pad)));
    // Replies of different profiles may come in any order: match them by id.
    for (int k = 0; k < n; ++k) {
      auto frame = ws.read();
      REQUIRE(frame);
      auto reply = parse(*frame);
      INFO("answered " << *frame);
      REQUIRE(reply.IsObject());
      REQUIRE(reply.HasMember("id"));
      const std::string id = reply["id"].GetString();
      REQUIRE(id.rfind(prefix, 0) == 0);
      const auto i = static_cast<std::size_t>(std::stoi(id.substr(prefix.size())));
      const auto type = type_of(reply);
      REQUIRE((type == "decision" || type == "error"));
      if (type == "decision") {
        ++t.acked[anons[i % anons.size()]];
        if (!t.errors.empty())
          ++t.decisions_after_error;
      } else {
        ++t.errors[code_of(reply)];
        t.refused.push_back(id);
      }
    }
  }
}

std::size_t errors_total(const tally& t) {
  std::size_t n = 0;
  for (const auto& [code, count] : t.errors)
    n += count;
  return n;
}

}  // namespace

TEST_CASE("a map full at map_size_max answers overloaded and 503, keeps every acknowledged message, and resumes",
          "[storage][faults][integration]") {
  temp_dir dir;
  const auto data = dir.path / "data";
  // Profiles at their steady size (a full history ring), as in production: what
  // fills the map is new profiles and idempotency keys.
  const std::string profiles = "[profiles]\nhistory_max_events = 8\n";
  auto small = write_config(dir.path, granted + profiles + "[storage]\nmap_size_initial = \"1MiB\"\nmap_size_max = \"2MiB\"\n");
  std::vector<std::string> anons;
  for (int i = 0; i < 24; ++i)
    anons.push_back("a-full-" + std::to_string(i));
  tally t;
  std::vector<std::string> erased_anons, kept_anons;
  {
    server_process srv(data, {"--config", small.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    // Fill: 1 KiB of properties per event, until the map refuses (bounded).
    int sent = 0;
    while (t.errors["overloaded"] < 64 && sent < 40000) {
      stream(ws, "f-", sent, 320, anons, 1024, t);
      sent += 320;
    }
    INFO("sent " << sent << ", errors " << errors_total(t));
    REQUIRE(t.errors["overloaded"] >= 64);
    CHECK(errors_total(t) == t.errors["overloaded"]);  // no `internal`: a full map is not a failure
    // Over HTTP the same message is answered 503 `overloaded`.
    http_result res;
    for (int i = 0; i < 20 && res.status != 503; ++i) {
      res = post_event(srv, event("h-" + std::to_string(i), anons[0], 4096));
      if (res.status == 200)
        ++t.acked[anons[0]];
    }
    REQUIRE(res.status == 503);
    INFO(res.body);
    CHECK(code_of(parse(res.body)) == "overloaded");
    CHECK(storage_stats(srv)["map_size_bytes"].GetUint64() == 2u << 20);

    // Every acknowledged message is in its profile, no refused one is (the profile
    // actors whose records failed reloaded from storage).
    for (const auto& anon : anons)
      CHECK(events_of(srv, anon) == t.acked[anon]);

    // Space again without a restart: erasing profiles frees their pages for reuse.
    for (std::size_t i = 0; i < anons.size(); ++i) {
      if (i % 2 == 0) {
        auto p = profile_by_identity(srv, "anonymous_id:" + anons[i]);
        REQUIRE(p.IsObject());
        REQUIRE(p.HasMember("profile_id"));
        const auto del = admin_call(srv, "DELETE", std::string("/v1/profiles/") + p["profile_id"].GetString());
        INFO(del.body);
        REQUIRE(del.status == 200);
        erased_anons.push_back(anons[i]);
        t.acked.erase(anons[i]);
      } else {
        kept_anons.push_back(anons[i]);
      }
    }
    tally more;
    stream(ws, "g-", 0, 64, kept_anons, 1024, more);
    CHECK(errors_total(more) == 0);
    for (const auto& [anon, n] : more.acked)
      t.acked[anon] += n;
    for (const auto& anon : kept_anons)
      CHECK(events_of(srv, anon) == t.acked[anon]);
    srv.stop(SIGKILL);
  }
  // Nothing corrupt: the same map opens, serves and holds what was acknowledged.
  {
    server_process srv(data, {"--config", small.string()});
    REQUIRE(http_call(srv.port(), "GET", "/readyz").status == 200);
    for (const auto& anon : kept_anons)
      CHECK(events_of(srv, anon) == t.acked[anon]);
    for (const auto& anon : erased_anons)
      CHECK(events_of(srv, anon) == 0);
    srv.stop(SIGTERM);
  }
  // Or a restart with a larger map_size_max: the map grows past the old limit.
  auto larger = write_config(dir.path, granted + profiles + "[storage]\nmap_size_initial = \"1MiB\"\nmap_size_max = \"64MiB\"\n");
  server_process srv(data, {"--config", larger.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  tally after;
  stream(ws, "l-", 0, 3200, kept_anons, 1024, after);
  CHECK(errors_total(after) == 0);
  CHECK(storage_stats(srv)["map_size_bytes"].GetUint64() > 2u << 20);
  for (const auto& anon : kept_anons)
    CHECK(events_of(srv, anon) == t.acked[anon] + after.acked[anon]);
}

TEST_CASE("a disk that cannot allocate answers overloaded and 503 before writing, and writes resume when it can",
          "[storage][faults][integration]") {
  temp_dir dir;
  sync_shim shim(dir);
  const auto data = dir.path / "data";
  auto cfg = write_config(dir.path, granted + "[storage]\npreallocate_ahead = \"1MiB\"\n");
  server_process srv(data, {"--config", cfg.string()}, shim.env(data));
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  const std::vector<std::string> anons = {"a-enospc-0", "a-enospc-1", "a-enospc-2"};
  tally t;
  stream(ws, "ok-", 0, 10, anons, 64, t);
  REQUIRE(errors_total(t) == 0);
  REQUIRE_FALSE(shim.lines('A').empty());  // the data file is allocated ahead of use

  // The disk is full: once the allocated blocks ahead run short, every batch is refused
  // before it writes, and none is acknowledged.
  shim.fail_allocs(28 /* ENOSPC */);
  int sent = 0;
  while (errors_total(t) == 0 && sent < 20000) {
    stream(ws, "x-", sent, 64, anons, 2048, t);
    sent += 64;
  }
  REQUIRE(errors_total(t) > 0);
  stream(ws, "x-", sent, 64, anons, 2048, t);  // still refused while the disk stays full
  sent += 64;
  CHECK(t.errors["overloaded"] == errors_total(t));
  CHECK(t.decisions_after_error == 0);
  const auto res = post_event(srv, event("h-full", anons[0], 16));
  CHECK(res.status == 503);
  INFO(res.body);
  CHECK(code_of(parse(res.body)) == "overloaded");
  CHECK(error_field(parse(res.body), "message") == "storage is full");
  // One message over HTTP: an HTTP error that names it, not the stream's reply.
  const auto refused = parse(res.body);
  REQUIRE(refused.IsObject());
  REQUIRE(refused.HasMember("error"));
  CHECK(error_field(refused["error"], "id") == "h-full");
  // An operator's consent change meets the same full disk: API.md section 4's shape too.
  {
    const auto p = profile_by_identity(srv, "anonymous_id:" + anons[0]);
    REQUIRE(p.IsObject());
    REQUIRE(p.HasMember("profile_id"));
    const auto put = admin_call(srv, "PUT", std::string("/v1/profiles/") + p["profile_id"].GetString() + "/consent",
                                R"({"purposes": {"marketing_sms": "granted"}, "source": "ops"})");
    CHECK(put.status == 503);
    INFO(put.body);
    const auto body = parse(put.body);
    REQUIRE(body.IsObject());
    REQUIRE(body.HasMember("error"));
    CHECK(error_field(body["error"], "code") == "overloaded");
  }
  CHECK(storage_stats(srv)["disk_full_refusals"].GetUint64() > 0);
  std::size_t failed_allocs = 0;
  for (const auto& line : shim.lines('A'))
    failed_allocs += line.substr(line.rfind(' ') + 1) == "28";
  CHECK(failed_allocs > 0);
  for (const auto& anon : anons)
    CHECK(events_of(srv, anon) == t.acked[anon]);

  // Space again: the next batch allocates and commits; the refused messages, resent,
  // are applied once (nothing of them had been written).
  shim.clear();
  REQUIRE(ws.send(event("after-0", anons[0])));
  REQUIRE(type_of(read_reply(ws, "after-0")) == "decision");
  ++t.acked[anons[0]];
  for (const auto& id : t.refused) {
    REQUIRE(ws.send(event(id, anons[static_cast<std::size_t>(std::stoi(id.substr(2))) % anons.size()], 16)));
    auto reply = read_reply(ws, id);
    REQUIRE(type_of(reply) == "decision");
    CHECK_FALSE(reply.HasMember("duplicate"));
    ++t.acked[anons[static_cast<std::size_t>(std::stoi(id.substr(2))) % anons.size()]];
  }
  for (const auto& anon : anons)
    CHECK(events_of(srv, anon) == t.acked[anon]);
}

TEST_CASE("a reader killed mid-read leaves no stale slot after the next periodic check",
          "[storage][faults][integration]") {
  temp_dir dir;
  const auto data = dir.path / "data";
  auto cfg = write_config(dir.path, granted + "[storage]\nreader_check_interval = \"100ms\"\n");
  server_process srv(data, {"--config", cfg.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(event("r-0", "a-reader")));
  REQUIRE(type_of(read_reply(ws, "r-0")) == "decision");
  const auto before = storage_stats(srv);
  REQUIRE(before["readers_cleared"].GetUint64() == 0);

  // Another process begins a read transaction on the same environment and is killed
  // while it holds it.
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const std::string binary = NUDGE_TEST_READER, data_arg = data.string();
  char* const argv[] = {const_cast<char*>(binary.c_str()), const_cast<char*>(data_arg.c_str()), nullptr};
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  ::close(out[1]);
  char buf[64] = {};
  const auto n = ::read(out[0], buf, sizeof buf - 1);
  ::close(out[0]);
  const auto held = storage_stats(srv);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  INFO("reader said: " << std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0));
  REQUIRE(std::string(buf).rfind("ready", 0) == 0);
  CHECK(held["readers_in_use"].GetUint64() >= 1);

  // The writer's periodic check clears the dead process's slot (bounded wait).
  rapidjson::Document after;
  for (int i = 0; i < 200; ++i) {
    after = storage_stats(srv);
    if (after["readers_cleared"].GetUint64() > 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(after["readers_cleared"].GetUint64() == 1);
  CHECK(after["readers_in_use"].GetUint64() < held["readers_in_use"].GetUint64());
  CHECK(http_call(srv.port(), "GET", "/metrics").body.find("nudge_storage_readers_cleared_total 1") !=
        std::string::npos);
  REQUIRE(ws.send(event("r-1", "a-reader")));
  REQUIRE(type_of(read_reply(ws, "r-1")) == "decision");
  CHECK(events_of(srv, "a-reader") == 2);
}

TEST_CASE("a backup taken under write load restores into a service that matches the backup, missing nothing "
          "acknowledged before it",
          "[storage][backup][faults][integration]") {
  // Also through the commit log: the backup, a second process, reads LMDB as the
  // service committed it and leaves the service's log alone.
  const std::string durability =
      GENERATE(std::string(), std::string("[durability]\nmode = \"power\"\npower_sync = \"log\"\n"));
  INFO("config: " << granted + durability);
  temp_dir dir;
  const auto data = dir.path / "data";
  const auto backup_dir = dir.path / "backup";
  constexpr int writers = 3;
  const auto anon = [](int w) { return "a-bk-" + std::to_string(w); };
  const auto msg_id = [](int w, int seq) { return "bk-" + std::to_string(w) + "-" + std::to_string(seq); };
  std::array<int, writers> before{}, total{};
  std::string web_key;
  {
    server_process srv(data, {"--config", write_config(dir.path, granted + durability).string()});
    web_key = srv.write_key();
    // Each writer sends one message at a time and waits for its reply, so the
    // messages committed at any moment are a prefix of its sequence.
    std::array<std::atomic<int>, writers> replied{};
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
      threads.emplace_back([&, w] {
        ws_client ws;
        if (ws.connect(srv.port(), "?key=" + srv.write_key()) != 101) {
          ++failures;
          return;
        }
        for (int seq = 0; seq < 20000 && !stop; ++seq) {
          if (!ws.send(event(msg_id(w, seq), anon(w), 256)) || type_of(read_reply(ws, msg_id(w, seq))) != "decision") {
            ++failures;
            return;
          }
          replied[static_cast<std::size_t>(w)] = seq + 1;
        }
      });
    const auto all_at_least = [&](const std::array<int, writers>& floor, int extra) {
      for (int i = 0; i < 400; ++i) {
        bool ok = true;
        for (int w = 0; w < writers; ++w)
          ok = ok && replied[static_cast<std::size_t>(w)] >= floor[static_cast<std::size_t>(w)] + extra;
        if (ok || failures > 0)
          return ok;
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
      return false;
    };
    const bool warmed = all_at_least({}, 100);
    for (int w = 0; w < writers; ++w)
      before[static_cast<std::size_t>(w)] = replied[static_cast<std::size_t>(w)];
    std::string out;
    const int rc = run_nudge({"backup", backup_dir.string(), "--data", data.string()}, out);
    std::array<int, writers> at_end{};
    for (int w = 0; w < writers; ++w)
      at_end[static_cast<std::size_t>(w)] = replied[static_cast<std::size_t>(w)];
    const bool went_on = all_at_least(at_end, 50);  // the writes went on after the copy
    stop = true;
    for (auto& th : threads)
      th.join();
    REQUIRE(warmed);
    INFO(out);
    REQUIRE(rc == 0);
    REQUIRE(failures == 0);
    CHECK(went_on);
    for (int w = 0; w < writers; ++w) {
      total[static_cast<std::size_t>(w)] = replied[static_cast<std::size_t>(w)];
      CHECK(events_of(srv, anon(w)) == static_cast<std::uint64_t>(total[static_cast<std::size_t>(w)]));
    }
    srv.stop(SIGTERM);
  }

  // What the backup file holds, read with the storage library from a scratch copy (so
  // that the backup itself is restored untouched): per writer, the messages in it
  // (their dedupe entries) form a prefix of what was sent, no shorter than what had
  // been acknowledged when the backup began; and the profiles stored.
  std::array<int, writers> in_backup{};
  std::map<std::string, std::set<std::string>> stored;  // profile id -> its identities
  std::map<std::string, std::string> expected;          // profile id -> its JSON, read from the file
  {
    temp_dir scratch;
    std::filesystem::copy_file(backup_dir / "data.mdb", scratch.path / "data.mdb");
    auto o = nudge::storage::test::options_for(scratch.path);
    o.preallocate_ahead = 0;
    auto env = nudge::storage::test::open_env(o);
    std::error_code ec;
    auto tx = env->read();
    const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    // The replies stored by time (key: ms, hash, source, '\0', id), by id.
    std::set<std::string> by_time;
    {
      MDB_cursor* cur = nullptr;
      REQUIRE(mdb_cursor_open(tx.get(), env->dedupe_by_time(), &cur) == MDB_SUCCESS);
      MDB_val k{}, v{};
      for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
        if (key.size() > 16 && key.substr(16, 4) == std::string_view("web\0", 4))
          by_time.emplace(key.substr(20));
      }
      mdb_cursor_close(cur);
    }
    for (int w = 0; w < writers; ++w) {
      int present = 0, gaps = 0;
      for (int seq = 0; seq < total[static_cast<std::size_t>(w)]; ++seq) {
        const bool here =
            by_time.count(msg_id(w, seq)) > 0 ||
            nudge::storage::dedupe_table::get(tx, "web", msg_id(w, seq), now, std::chrono::hours(24), ec).has_value();
        REQUIRE(!ec);
        if (here && present != seq)
          ++gaps;  // a message in the backup after one that is not
        present += here;
      }
      INFO("writer " << w << ": acknowledged before " << before[static_cast<std::size_t>(w)] << ", in backup " << present
                     << ", sent " << total[static_cast<std::size_t>(w)]);
      CHECK(gaps == 0);
      CHECK(present >= before[static_cast<std::size_t>(w)]);
      CHECK(present < total[static_cast<std::size_t>(w)]);
      in_backup[static_cast<std::size_t>(w)] = present;
    }
    for (const auto& id : nudge::storage::profile_table::ids_after(tx, "", 100, ec)) {
      auto snap = nudge::storage::profile_table::get(tx, id, ec);
      REQUIRE(snap);
      for (const auto& ident : snap->state.identities)
        stored[id].insert(ident.type + ":" + ident.value);
      // The whole profile as the service activates it (snapshot, then the journal
      // after it), rendered as GET /v1/profiles/{id} renders it, under the config the
      // service runs ([consent] default = "granted").
      nudge::actors::profile_options opt;
      opt.purpose_defaults.assign(opt.purposes.size(), true);
      auto positions = nudge::storage::journal_table::positions_of(tx, id, ec);
      REQUIRE(!ec);
      auto loaded = nudge::actors::load_profile(tx, id, positions, opt, now, ec);
      REQUIRE(!ec);
      CHECK(loaded.seq >= loaded.snapshot_seq);
      expected[id] = nudge::actors::profile_json(loaded.state, opt, now);
    }
  }
  REQUIRE(stored.size() == static_cast<std::size_t>(writers));

  // Restore per the README (point --data at the backup) and compare every profile.
  server_process restored(backup_dir, {"--config", (dir.path / "nudge.toml").string()});
  CHECK(restored.write_key() == web_key);  // the key files came along
  REQUIRE(http_call(restored.port(), "GET", "/readyz").status == 200);
  for (const auto& [id, identities] : stored) {
    const auto res = admin_call(restored, "GET", "/v1/profiles/" + id);
    REQUIRE(res.status == 200);
    const auto p = parse(res.body);
    std::set<std::string> served;
    for (const auto& ident : p["identities"].GetArray())
      served.insert(std::string(ident["type"].GetString()) + ":" + ident["value"].GetString());
    CHECK(served == identities);
    int writer = -1;
    for (int w = 0; w < writers; ++w)
      if (identities.count("anonymous_id:" + anon(w)))
        writer = w;
    REQUIRE(writer >= 0);
    CHECK(p["stats"]["events"].GetUint64() == static_cast<std::uint64_t>(in_backup[static_cast<std::size_t>(writer)]));
    // Every byte of the profile: identities, traits, consent, stats, recent events and
    // decisions, as the backup file holds them.
    CHECK(res.body == expected[id]);
  }
}

TEST_CASE("the service maps the data file's preallocated pages ahead of use when idle, not when LMDB syncs each commit or without the writable map",
          "[storage][integration]") {
  temp_dir dir;
  // A small preallocation, so that a few hundred messages cross into a second one.
  auto cfg = write_config(dir.path, granted + "[storage]\npreallocate_ahead = \"2MiB\"\n");
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  // `count` messages over one connection, every one answered with a decision.
  auto feed = [](const server_process& s, const std::string& prefix, int count, const std::vector<std::string>& anons,
                 std::size_t pad) {
    ws_client ws;
    REQUIRE(ws.connect(s.port(), "?key=" + s.write_key()) == 101);
    tally t;
    stream(ws, prefix, 0, count, anons, pad, t);
    REQUIRE(errors_total(t) == 0);
  };
  feed(srv, "p-", 600, {"a-p1", "a-p2", "a-p3"}, 2000);
  // The writer prefaults when idle: bounded wait until it has reached the allocated end.
  rapidjson::Document s;
  for (int i = 0; i < 200; ++i) {
    s = storage_stats(srv);
    if (s["prefaulted_bytes"].GetUint64() == s["allocated_bytes"].GetUint64())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO("used " << s["map_used_bytes"].GetUint64() << ", allocated " << s["allocated_bytes"].GetUint64()
               << ", prefaulted " << s["prefaulted_bytes"].GetUint64());
  CHECK(s["allocated_bytes"].GetUint64() > s["map_used_bytes"].GetUint64());
  CHECK(s["prefaulted_bytes"].GetUint64() == s["allocated_bytes"].GetUint64());
  CHECK(http_call(srv.port(), "GET", "/metrics").body.find("nudge_storage_prefaulted_bytes " +
                                                           std::to_string(s["prefaulted_bytes"].GetUint64())) !=
        std::string::npos);
  // Written pages read back whole after the prefault: every message counted once.
  CHECK(events_of(srv, "a-p1") == 200);
  CHECK(events_of(srv, "a-p3") == 200);

  temp_dir power_dir;
  // LMDB syncing each commit's pages would write the prefaulted ones with every sync.
  auto power_cfg = write_config(power_dir.path, granted + "[durability]\nmode = \"power\"\npower_sync = \"lmdb\"\n");
  server_process power(power_dir.path / "data", {"--config", power_cfg.string()});
  feed(power, "q-", 64, {"a-q"}, 0);
  const auto ps = storage_stats(power);
  CHECK(ps["allocated_bytes"].GetUint64() > 0);
  CHECK(ps["prefaulted_bytes"].GetUint64() == 0);

  // "process" durability with pwrite: the map is read-only, nothing to prefault; the
  // preallocation (a full disk refused, not written into) stays.
  temp_dir pwrite_dir;
  auto pwrite_cfg = write_config(pwrite_dir.path, granted + "[storage]\npreallocate_ahead = \"2MiB\"\nwritable_map = false\n");
  server_process pwrite(pwrite_dir.path / "data", {"--config", pwrite_cfg.string()});
  feed(pwrite, "w-", 600, {"a-w1", "a-w2", "a-w3"}, 2000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the writer is idle: it would prefault now
  const auto ws = storage_stats(pwrite);
  CHECK(ws["allocated_bytes"].GetUint64() > ws["map_used_bytes"].GetUint64());
  CHECK(ws["prefaulted_bytes"].GetUint64() == 0);
  CHECK(events_of(pwrite, "a-w1") == 200);
  CHECK(events_of(pwrite, "a-w3") == 200);
}
