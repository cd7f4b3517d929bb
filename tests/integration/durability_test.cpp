// Durability against the real binary: SIGKILL while a client streams, graceful
// SIGTERM, restarts on the same data dir, passivation and reactivation.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <set>

using namespace nudge::test;

namespace {

std::string consent(const std::string& id, const std::string& anon) {
  return R"({"type":"consent","id":")" + id + R"(","identities":{"anonymous_id":")" + anon +
         R"("},"purposes":{"analytics":"granted","personalization":"granted"}})";
}

std::string purchase(const std::string& id, const std::string& anon) {
  return R"({"type":"event","id":")" + id + R"(","name":"purchase","identities":{"anonymous_id":")" + anon +
         R"("},"properties":{"price":1.5}})";
}

/// Sends message(id) for every id, pipelined in windows of `window`: a window is sent,
/// then its replies are read (in commit order, which across profiles need not be the
/// order sent) before the next.
void send_windows(ws_client& ws, const std::vector<std::string>& ids, std::size_t window,
                  const std::function<std::string(const std::string&)>& message) {
  for (std::size_t next = 0; next < ids.size(); next += window) {
    const std::size_t end = std::min(ids.size(), next + window);
    for (std::size_t i = next; i < end; ++i)
      REQUIRE(ws.send(message(ids[i])));
    std::set<std::string> waiting(ids.begin() + static_cast<std::ptrdiff_t>(next),
                                  ids.begin() + static_cast<std::ptrdiff_t>(end));
    for (std::size_t reads = 0; !waiting.empty() && reads < 4 * window; ++reads) {
      auto frame = ws.read(std::chrono::seconds(5));
      REQUIRE(frame);
      auto d = parse(*frame);
      if (d.IsObject() && d.HasMember("id") && d["id"].IsString())
        waiting.erase(d["id"].GetString());
    }
    REQUIRE(waiting.empty());
  }
}

rapidjson::Document profile_by_anon(const server_process& srv, const std::string& anon) {
  return profile_by_identity(srv, "anonymous_id:" + anon);
}

}  // namespace

TEST_CASE("every replied event survives SIGKILL and none is counted twice after resending, with the writable map and without, and through the commit log",
          "[durability][integration][crash]") {
  // "process" durability commits into a writable map by default; without it LMDB
  // writes each commit's pages with pwrite, and a killed process must lose as little.
  // "power" durability through the commit log: the restart rolls LMDB back to the last
  // checkpoint and replays the log over it.
  // Checkpoints only after each MiB of log, so that the kill leaves records to replay.
  const std::string power = "[durability]\nmode = \"power\"\npower_sync = \"log\"\nlog_checkpoint_interval = \"1h\"\n";
  const std::string storage = GENERATE_COPY(std::string(), std::string("[storage]\nwritable_map = false\n"), power);
  INFO("config: " << (storage.empty() ? std::string("the default") : storage));
  temp_dir dir;
  std::vector<std::string> extra;
  if (!storage.empty())
    extra = {"--config", write_config(dir.path, storage).string()};
  const auto data = dir.path / "data";
  const std::vector<std::string> anons = {"a-k1", "a-k2", "a-k3"};
  std::set<std::string> replied;
  const int total = 3000;
  {
    server_process srv(data, extra);
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    for (const auto& a : anons) {
      REQUIRE(ws.send(consent("c-" + a, a)));
      REQUIRE(read_reply(ws, "c-" + a).IsObject());
    }
    std::atomic<bool> killed{false};
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      srv.stop(SIGKILL);
      killed = true;
    });
    // Pipelined: windows of 32 messages, then their replies.
    int next = 0;
    while (next < total && !killed) {
      int window_end = std::min(total, next + 32);
      for (int i = next; i < window_end; ++i)
        if (!ws.send(purchase("e-" + std::to_string(i), anons[static_cast<std::size_t>(i) % anons.size()])))
          break;
      for (int i = next; i < window_end; ++i) {
        auto frame = ws.read(std::chrono::seconds(3));
        if (!frame)
          break;
        auto d = parse(*frame);
        if (d.IsObject() && d.HasMember("type") && std::string(d["type"].GetString()) == "decision")
          replied.insert(d["id"].GetString());
      }
      next = window_end;
    }
    killer.join();
  }
  INFO("replied before the kill: " << replied.size());
  REQUIRE(!replied.empty());

  server_process srv(data, extra);
  if (storage == power) {
    // The replies since the last checkpoint were replayed.
    INFO(srv.output());
    CHECK(srv.output().find("commits replayed from the commit log") != std::string::npos);
    const auto stats =
        parse(http_call(srv.port(), "GET", "/v1/stats", "", {{"Authorization", "Bearer " + srv.admin_token()}}).body);
    CHECK(stats["storage"]["log_records_replayed"].GetUint64() > 0);
    CHECK(stats["storage"]["log_checkpoints"].GetUint64() >= 1);  // the start's own
    CHECK(stats["storage"]["log_checkpoint_failures"].GetUint64() == 0);
  }
  std::uint64_t stored = 0;
  for (const auto& a : anons)
    stored += profile_by_anon(srv, a)["stats"]["events"].GetUint64();
  CHECK(stored >= replied.size());

  // Resend everything: what was applied is answered as a duplicate, the rest is applied.
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  std::size_t duplicates = 0;
  for (int start = 0; start < total; start += 64) {
    int end = std::min(total, start + 64);
    for (int i = start; i < end; ++i)
      REQUIRE(ws.send(purchase("e-" + std::to_string(i), anons[static_cast<std::size_t>(i) % anons.size()])));
    for (int i = start; i < end; ++i) {
      auto frame = ws.read();
      REQUIRE(frame);
      auto d = parse(*frame);
      REQUIRE(std::string(d["type"].GetString()) == "decision");
      if (d.HasMember("duplicate") && d["duplicate"].GetBool()) {
        ++duplicates;
      } else {
        // Nothing that got a reply before the kill may be applied again.
        CHECK(replied.count(d["id"].GetString()) == 0);
      }
    }
  }
  CHECK(duplicates >= replied.size());
  std::uint64_t after = 0;
  for (const auto& a : anons)
    after += profile_by_anon(srv, a)["stats"]["events"].GetUint64();
  CHECK(after == static_cast<std::uint64_t>(total));
}

TEST_CASE("after SIGTERM and a restart the service answers exactly as before", "[durability][integration]") {
  temp_dir dir;
  std::string before;
  {
    server_process srv(dir.path);
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    REQUIRE(ws.send(consent("c-1", "a-r")));
    read_reply(ws, "c-1");
    for (int i = 0; i < 150; ++i) {  // past the snapshot interval: snapshot + journal tail
      REQUIRE(ws.send(purchase("e-" + std::to_string(i), "a-r")));
      REQUIRE(read_reply(ws, "e-" + std::to_string(i)).IsObject());
    }
    REQUIRE(ws.send(R"({"type":"event","id":"t-1","name":"page_view","identities":{"anonymous_id":"a-r"},"traits":{"tier":"gold"}})"));
    read_reply(ws, "t-1");
    int status = 0;
    before = http_call(srv.port(), "GET", "/v1/profiles?identity=anonymous_id:a-r", "",
                       {{"Authorization", "Bearer " + srv.admin_token()}}).body;
    (void)status;
    ws.close();
    CHECK(srv.stop(SIGTERM) == 0);
  }
  server_process srv(dir.path);
  auto after = http_call(srv.port(), "GET", "/v1/profiles?identity=anonymous_id:a-r", "",
                         {{"Authorization", "Bearer " + srv.admin_token()}}).body;
  CHECK(after == before);
  auto p = parse(after);
  CHECK(p["stats"]["events"].GetUint64() == 151);
  CHECK(std::string(p["traits"]["tier"].GetString()) == "gold");
  // The same id again is still a duplicate after the restart.
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(purchase("e-7", "a-r")));
  CHECK(read_reply(ws, "e-7")["duplicate"].GetBool());
}

TEST_CASE("an idle profile is passivated and comes back from storage unchanged", "[durability][integration]") {
  temp_dir dir;
  auto cfg = dir.path / "fast.toml";
  {
    std::ofstream out(cfg);
    out << "[profiles]\nidle_passivate = \"200ms\"\n";
  }
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(consent("c-1", "a-p")));
  read_reply(ws, "c-1");
  for (int i = 0; i < 10; ++i) {
    REQUIRE(ws.send(purchase("e-" + std::to_string(i), "a-p")));
    read_reply(ws, "e-" + std::to_string(i));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto metrics = http_call(srv.port(), "GET", "/metrics").body;
  CHECK(metrics.find("nudge_profiles_active 0") != std::string::npos);
  REQUIRE(ws.send(purchase("e-10", "a-p")));
  read_reply(ws, "e-10");
  auto p = profile_by_anon(srv, "a-p");
  CHECK(p["stats"]["events"].GetUint64() == 11);
  CHECK(p["stats"]["by_name"]["purchase"]["sum"]["price"].GetDouble() == Approx(16.5));
}

TEST_CASE("past the journal's live span profiles snapshot on request, and a SIGKILL then loses nothing",
          "[durability][integration][crash]") {
  temp_dir dir;
  auto cfg = write_config(dir.path, "[durability]\ncheckpoint_entries = 1000\n");
  constexpr int profiles = 200;
  constexpr int per_profile = 8;  // far below snapshot_every: only checkpoints snapshot them
  auto anon = [](int p) { return "a-span-" + std::to_string(p); };
  {
    server_process srv(dir.path / "data", {"--config", cfg.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    std::vector<std::string> ids;
    for (int p = 0; p < profiles; ++p)
      ids.push_back("c-" + std::to_string(p));
    for (int round = 0; round < per_profile; ++round)
      for (int p = 0; p < profiles; ++p)
        ids.push_back("e-" + std::to_string(round) + "-" + std::to_string(p));
    send_windows(ws, ids, 50, [&](const std::string& id) {
      const int p = std::stoi(id.substr(id.rfind('-') + 1));
      return id[0] == 'c' ? consent(id, anon(p)) : purchase(id, anon(p));
    });
    // The snapshots asked for bring the live span back under 1,000 entries.
    std::uint64_t asked = 0;
    std::uint64_t live = 0;
    for (int i = 0; i < 100; ++i) {
      auto stats = parse(admin_call(srv, "GET", "/v1/stats").body);
      REQUIRE(stats.IsObject());
      asked = stats["journal"]["checkpoints_asked"].GetUint64();
      live = stats["journal"]["live_entries"].GetUint64();
      if (asked > 0 && live <= 1000)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(asked > 0);
    CHECK(live <= 1000);
    srv.stop(SIGKILL);
  }
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  for (int p : {0, 1, 57, 120, profiles - 1}) {
    INFO("profile " << anon(p));
    auto doc = profile_by_anon(srv, anon(p));
    REQUIRE(doc.IsObject());
    CHECK(doc["stats"]["events"].GetUint64() == per_profile);
    CHECK(doc["stats"]["by_name"]["purchase"]["sum"]["price"].GetDouble() == Approx(1.5 * per_profile));
  }
}

/// Resends each of `ids` (built by `message`) to `srv` and checks that each is
/// answered as a duplicate; with `first` (id → first reply), with the first reply's
/// content.
template <class Message>
void resend_expecting_duplicates(const server_process& srv, const std::vector<std::string>& ids, Message message,
                                 const std::map<std::string, rapidjson::Document>* first = nullptr) {
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  for (const auto& id : ids) {
    INFO("resending " << id);
    REQUIRE(ws.send(message(id)));
    auto reply = read_reply(ws, id);
    REQUIRE(reply.HasMember("duplicate"));
    CHECK(reply["duplicate"].GetBool());
    if (first) {
      reply.RemoveMember("duplicate");
      CHECK(reply == first->at(id));
    }
  }
}

TEST_CASE("duplicates are found in the profile's seen messages and past their bound by id, also after a SIGKILL",
          "[durability][integration][crash][dedupe]") {
  temp_dir dir;
  auto cfg = write_config(dir.path, "[durability]\ndedupe_seen_max = 2\n");
  // c-1 and e-0 are noted as seen (replies stored by time); e-1..e-4 go by id.
  std::vector<std::string> ids{"c-1", "e-0", "e-1", "e-2", "e-3", "e-4"};
  auto message = [](const std::string& id) { return id[0] == 'c' ? consent(id, "a-seen") : purchase(id, "a-seen"); };
  // After the restart their content can only come from the tables (packed there).
  std::map<std::string, rapidjson::Document> first;
  auto resend_all = [&](const server_process& srv) { resend_expecting_duplicates(srv, ids, message, &first); };
  {
    server_process srv(dir.path / "data", {"--config", cfg.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    for (const auto& id : ids) {
      REQUIRE(ws.send(message(id)));
      auto reply = read_reply(ws, id);
      REQUIRE(reply.HasMember("id"));
      CHECK_FALSE(reply.HasMember("duplicate"));
      first.emplace(id, std::move(reply));
    }
    resend_all(srv);
    srv.stop(SIGKILL);
  }
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  resend_all(srv);
  CHECK(profile_by_anon(srv, "a-seen")["stats"]["events"].GetUint64() == 5);
}

TEST_CASE("hundreds of seen messages, kept in chunks over many snapshots, still find duplicates after a SIGKILL and a stop",
          "[durability][integration][crash][dedupe]") {
  temp_dir dir;
  constexpr int total = 300;  // several chunks of 64 and several snapshots (every 64 records)
  std::vector<std::string> ids;
  for (int i = 0; i < total; ++i)
    ids.push_back("s-" + std::to_string(i));
  auto message = [](const std::string& id) { return purchase(id, "a-many"); };
  // Old, chunk-edge and new ids: each must be answered as the duplicate it is.
  const std::vector<std::string> resent{"s-0", "s-63", "s-64", "s-127", "s-128", "s-200", "s-256", "s-299"};
  auto resend = [&](const server_process& srv) { resend_expecting_duplicates(srv, resent, message); };
  {
    server_process srv(dir.path);
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    REQUIRE(ws.send(consent("c-many", "a-many")));  // analytics: its events are counted
    read_reply(ws, "c-many");
    send_windows(ws, ids, 30, message);
    srv.stop(SIGKILL);
  }
  {
    server_process srv(dir.path);
    resend(srv);
    CHECK(profile_by_anon(srv, "a-many")["stats"]["events"].GetUint64() == total);
    srv.stop(SIGTERM);  // a clean stop snapshots the profile: its seen messages in chunks
  }
  server_process srv(dir.path);
  resend(srv);
  CHECK(profile_by_anon(srv, "a-many")["stats"]["events"].GetUint64() == total);
}

TEST_CASE("a decision log past its bound, kept in chunks over many snapshots, comes back whole after a SIGKILL",
          "[durability][integration][crash]") {
  temp_dir dir;
  constexpr int total = 330;  // past decisions_max (200) and several snapshot intervals
  std::string pid;
  rapidjson::Document before;
  {
    server_process srv(dir.path);
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    REQUIRE(ws.send(consent("c-1", "a-log")));
    read_reply(ws, "c-1");
    std::vector<std::string> ids;
    for (int i = 0; i < total; ++i)
      ids.push_back("e-" + std::to_string(i));
    send_windows(ws, ids, 30, [](const std::string& id) { return purchase(id, "a-log"); });
    pid = profile_by_anon(srv, "a-log")["profile_id"].GetString();
    before = parse(admin_call(srv, "GET", "/v1/profiles/" + pid + "/export").body);
    srv.stop(SIGKILL);
  }
  REQUIRE(before.IsObject());
  const auto& decisions = before["decisions"];
  REQUIRE(decisions.Size() == 200);  // the log dropped its oldest
  server_process srv(dir.path);
  auto after = parse(admin_call(srv, "GET", "/v1/profiles/" + pid + "/export").body);
  REQUIRE(after.IsObject());
  CHECK(after["decisions"] == decisions);
  CHECK(after["events"] == before["events"]);
  // And once more after a clean stop, which writes a snapshot of it all.
  srv.stop(SIGTERM);
  server_process again(dir.path);
  auto last = parse(admin_call(again, "GET", "/v1/profiles/" + pid + "/export").body);
  REQUIRE(last.IsObject());
  CHECK(last["decisions"] == decisions);
}

TEST_CASE("a history past its bound, kept in chunks, with late events among them, comes back whole after a SIGKILL",
          "[durability][integration][crash]") {
  temp_dir dir;
  auto cfg = write_config(dir.path, "[profiles]\nhistory_max_events = 100\n");
  constexpr int total = 330;  // past history_max_events and several snapshot intervals
  // Event i an hour ago plus i seconds; every 20th is late, placed before the five
  // newest (which starts a new range of ordinals in storage).
  const auto start = std::chrono::system_clock::now() - std::chrono::hours(1);
  auto event_at = [&](const std::string& id) {
    const int i = std::stoi(id.substr(2));
    const int offset = i % 20 == 19 ? i - 5 : i;
    const std::time_t t = std::chrono::system_clock::to_time_t(start + std::chrono::seconds(offset));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return R"({"type":"event","id":")" + id + R"(","name":")" + (i % 3 ? "page_view" : "cart_add") +
           R"(","ts":")" + ts + R"(","identities":{"anonymous_id":"a-hist"},"properties":{"n":)" +
           std::to_string(i) + "}}";
  };
  std::string pid;
  rapidjson::Document before;
  {
    server_process srv(dir.path / "data", {"--config", cfg.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    REQUIRE(ws.send(consent("c-1", "a-hist")));
    read_reply(ws, "c-1");
    std::vector<std::string> ids;
    for (int i = 0; i < total; ++i)
      ids.push_back("e-" + std::to_string(i));
    send_windows(ws, ids, 1, event_at);  // one at a time: the late ones arrive late
    pid = profile_by_anon(srv, "a-hist")["profile_id"].GetString();
    before = parse(admin_call(srv, "GET", "/v1/profiles/" + pid + "/export").body);
    srv.stop(SIGKILL);
  }
  REQUIRE(before.IsObject());
  const auto& events = before["events"];
  REQUIRE(events.IsArray());
  REQUIRE(events.Size() == 100);  // the history dropped its oldest
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  auto after = parse(admin_call(srv, "GET", "/v1/profiles/" + pid + "/export").body);
  REQUIRE(after.IsObject());
  CHECK(after["events"] == events);
  CHECK(after["decisions"] == before["decisions"]);
  // And once more after a clean stop, which writes a snapshot of it all.
  srv.stop(SIGTERM);
  server_process again(dir.path / "data", {"--config", cfg.string()});
  auto last = parse(admin_call(again, "GET", "/v1/profiles/" + pid + "/export").body);
  REQUIRE(last.IsObject());
  CHECK(last["events"] == events);
}
