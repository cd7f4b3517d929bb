// durability = "power" against the real binary with an LD_PRELOAD shim
// (sync_shim.cpp) that logs every msync/fsync/fdatasync and fails them on request.
// A SIGKILL cannot tell a missing sync from a present one; the shim can: it proves a
// sync of the data file precedes every reply, and that a failing sync (EIO, ENOSPC)
// yields error replies, never a success, after which the service recovers.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <optional>
#include <set>
#include <thread>

using namespace nudge::test;

namespace {

/// "power" durability; `power_sync` "lmdb" (the default: LMDB syncs each commit) or
/// "log" (the commit log: storage/commit_log.hpp).
std::filesystem::path power_config(const temp_dir& dir, const std::string& power_sync = "lmdb") {
  auto cfg = dir.path / "power.toml";
  std::ofstream(cfg) << "[durability]\nmode = \"power\"\npower_sync = \"" << power_sync << "\"\n";
  return cfg;
}

std::string purchase(const std::string& id) {
  return R"({"type":"event","id":")" + id + R"(","name":"purchase","identities":{"anonymous_id":"a-pw"},"properties":{"price":1}})";
}

std::string type_of(const rapidjson::Document& d) {
  return d.IsObject() && d.HasMember("type") && d["type"].IsString() ? d["type"].GetString() : "";
}

std::uint64_t events(const server_process& srv) {
  auto p = profile_by_identity(srv, "anonymous_id:a-pw");
  return p.IsObject() && p.HasMember("stats") ? p["stats"]["events"].GetUint64() : 0;
}

std::uint64_t journal_commits(const server_process& srv) {
  auto s = parse(http_call(srv.port(), "GET", "/v1/stats", "", {{"Authorization", "Bearer " + srv.admin_token()}}).body);
  return s["journal"]["commits"].GetUint64();
}

void grant(ws_client& ws) {
  REQUIRE(ws.send(R"({"type":"consent","id":"c-pw","identities":{"anonymous_id":"a-pw"},"purposes":{"analytics":"granted"}})"));
  REQUIRE(type_of(read_reply(ws, "c-pw")) == "ack");
}

}  // namespace

TEST_CASE("power durability: a sync of the data file or the commit log precedes every reply",
          "[durability][power][integration]") {
  const std::string power_sync = GENERATE(std::string("lmdb"), std::string("log"));
  INFO("power_sync " << power_sync);
  temp_dir dir;
  sync_shim shim(dir);
  const auto data = dir.path / "data";
  server_process srv(data, {"--config", power_config(dir, power_sync).string()}, shim.env(data));
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  grant(ws);

  SECTION("one message at a time: the sync count grows between each send and its reply") {
    for (int i = 0; i < 40; ++i) {
      const auto before = shim.syncs();
      REQUIRE(ws.send(purchase("e-" + std::to_string(i))));
      auto reply = read_reply(ws, "e-" + std::to_string(i));
      REQUIRE(type_of(reply) == "decision");
      INFO("message " << i);
      CHECK(shim.syncs() > before);
    }
    // Each of them is a sync that succeeded (fdatasync: in power durability LMDB writes
    // its pages with pwrite, and the commit log appends with pwritev; msync when LMDB
    // used the writable map). With the log, the checkpoints every 100 ms sync too.
    for (const auto& line : shim.lines('S'))
      CHECK((line.find(" msync 0") != std::string::npos || line.find(" fsync 0") != std::string::npos ||
             line.find(" fdatasync 0") != std::string::npos));
  }
  SECTION("pipelined: at least one sync per journal commit, and every reply after one") {
    // A commit of markers alone writes nothing and syncs nothing; every other one syncs.
    const auto syncs_before = shim.syncs();
    const auto commits_before = journal_commits(srv);
    const int n = 300;
    for (int i = 0; i < n; ++i) REQUIRE(ws.send(purchase("p-" + std::to_string(i))));
    for (int i = 0; i < n; ++i) {
      auto frame = ws.read();
      REQUIRE(frame);
      REQUIRE(type_of(parse(*frame)) == "decision");
    }
    const auto commits = journal_commits(srv) - commits_before;
    const auto syncs = shim.syncs() - syncs_before;
    INFO("commits " << commits << ", syncs " << syncs);
    CHECK(commits >= 1);
    CHECK(syncs >= commits);
    CHECK(events(srv) == static_cast<std::uint64_t>(n));
  }
}

TEST_CASE("process durability does not sync per commit (the shim's control case)", "[durability][integration]") {
  temp_dir dir;
  sync_shim shim(dir);
  const auto data = dir.path / "data";
  server_process srv(data, {}, shim.env(data));
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  grant(ws);
  const auto before = shim.syncs();
  for (int i = 0; i < 20; ++i) {
    REQUIRE(ws.send(purchase("e-" + std::to_string(i))));
    REQUIRE(type_of(read_reply(ws, "e-" + std::to_string(i))) == "decision");
  }
  CHECK(shim.syncs() == before);
}

TEST_CASE("a failing sync gets error replies, never a success, and the service recovers consistently",
          "[durability][power][integration][faults]") {
  temp_dir dir;
  sync_shim shim(dir);
  const auto data = dir.path / "data";
  auto errno_value = GENERATE(5 /* EIO */, 28 /* ENOSPC */);
  // With the commit log, the record whose sync failed is voided on disk by the next
  // sync that succeeds (the writer's recovery), so that a restart does not replay it.
  const std::string power_sync = GENERATE(std::string("lmdb"), std::string("log"));
  INFO("errno " << errno_value << ", power_sync " << power_sync);
  // The log's checkpoints sync every 100 ms: they would take the failures meant for
  // the commits.
  auto cfg = power_config(dir, power_sync);
  std::ofstream(cfg, std::ios::app) << "log_checkpoint_interval = \"1h\"\n";
  std::set<std::string> sent;
  {
    server_process srv(data, {"--config", cfg.string()}, shim.env(data));
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    grant(ws);
    for (int i = 0; i < 5; ++i) {
      sent.insert("ok-" + std::to_string(i));
      REQUIRE(ws.send(purchase("ok-" + std::to_string(i))));
      REQUIRE(type_of(read_reply(ws, "ok-" + std::to_string(i))) == "decision");
    }

    // Three syncs fail: the commit's own, then the writer's recovery attempts before
    // each of the next two batches. All three messages are refused.
    shim.fail_syncs(3, errno_value);
    std::vector<std::string> refused;
    for (int i = 0; i < 3; ++i) {
      const auto id = "f-" + std::to_string(i);
      sent.insert(id);
      REQUIRE(ws.send(purchase(id)));
      auto reply = read_reply(ws, id);
      REQUIRE(type_of(reply) == "error");
      CHECK(std::string(reply["code"].GetString()) == "internal");
      refused.push_back(id);
    }

    // The next sync succeeds: writes resume.
    sent.insert("after-0");
    REQUIRE(ws.send(purchase("after-0")));
    REQUIRE(type_of(read_reply(ws, "after-0")) == "decision");

    // Resending the refused messages: each is applied now, once. None was committed:
    // the first commit's data sync failed before LMDB wrote its meta page (so the
    // commit was undone), the other two met the sticky failure and were not written.
    for (const auto& id : refused) {
      REQUIRE(ws.send(purchase(id)));
      auto reply = read_reply(ws, id);
      REQUIRE(type_of(reply) == "decision");
      INFO(id);
      CHECK_FALSE((reply.HasMember("duplicate") && reply["duplicate"].GetBool()));
    }
    CHECK(events(srv) == sent.size());
    srv.stop(SIGKILL);
  }
  shim.clear();
  server_process srv(data, {"--config", cfg.string()}, shim.env(data));
  REQUIRE(http_call(srv.port(), "GET", "/readyz").status == 200);
  CHECK(events(srv) == sent.size());
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  for (const auto& id : sent) {
    REQUIRE(ws.send(purchase(id)));
    auto reply = read_reply(ws, id);
    REQUIRE(type_of(reply) == "decision");
    INFO(id);
    CHECK(reply["duplicate"].GetBool());
  }
}

TEST_CASE("ENOSPC on writes to the data dir never turns into a success reply", "[durability][power][integration][faults]") {
  temp_dir dir;
  sync_shim shim(dir);
  const auto data = dir.path / "data";
  server_process srv(data, {"--config", power_config(dir).string()}, shim.env(data));
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  grant(ws);
  shim.fail_writes(28);
  std::size_t decisions = 0, errors = 0;
  for (int i = 0; i < 20; ++i) {
    REQUIRE(ws.send(purchase("w-" + std::to_string(i))));
    auto reply = read_reply(ws, "w-" + std::to_string(i));
    const auto t = type_of(reply);
    REQUIRE((t == "decision" || t == "error"));
    (t == "decision" ? decisions : errors) += 1;
  }
  std::size_t failed_writes = 0;  // lines "W N CALL ERRNO" with a non-zero errno
  for (const auto& line : shim.lines('W'))
    failed_writes += line.substr(line.rfind(' ') + 1) != "0";
  INFO("data-file writes failed: " << failed_writes << ", decisions " << decisions << ", errors " << errors);
  // In power durability LMDB writes its pages with pwrite (no writable map), so ENOSPC
  // may hit those writes; when none failed, every reply is a success.
  if (failed_writes == 0)
    CHECK(decisions == 20);
  else
    CHECK(errors > 0);
  shim.clear();
  REQUIRE(ws.send(purchase("w-after")));
  REQUIRE(type_of(read_reply(ws, "w-after")) == "decision");
  CHECK(events(srv) == decisions + 1);
}

TEST_CASE("a profile asked to leave while it reloads after a failed sync leaves once the reload settles",
          "[durability][power][integration][faults]") {
  temp_dir dir;
  sync_shim shim(dir);
  const auto data = dir.path / "data";
  auto cfg = dir.path / "evict.toml";
  std::ofstream(cfg) << "[durability]\nmode = \"power\"\n[profiles]\nmax_active = 2\n[consent]\ndefault = \"granted\"\n";
  auto event = [](const std::string& id, const std::string& anon) {
    return R"({"type":"event","id":")" + id + R"(","name":"page_view","identities":{"anonymous_id":")" + anon + R"("}})";
  };
  auto wait_for_slow_syncs = [&](std::size_t n) {
    for (int i = 0; i < 1000 && shim.lines('D').size() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return shim.lines('D').size() >= n;
  };
  server_process srv(data, {"--config", cfg.string()}, shim.env(data));
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(event("p-0", "a-p")));
  REQUIRE(type_of(read_reply(ws, "p-0")) == "decision");

  // p-1's sync is slow and fails; the writer's recovery sync before the next batch
  // (q-0's) is slow too. P's reload waits on a marker behind that batch.
  shim.fail_syncs(1, 5);
  shim.slow_syncs(2, 1500);
  REQUIRE(ws.send(event("p-1", "a-p")));
  REQUIRE(wait_for_slow_syncs(1));
  REQUIRE(ws.send(event("q-0", "a-q")));
  std::vector<std::string> others;
  REQUIRE(type_of(read_reply(ws, "p-1", &others)) == "error");
  REQUIRE(wait_for_slow_syncs(2));
  // R's activation makes three active at a cap of two: P, the oldest, is asked to
  // leave while its reload is still waiting.
  REQUIRE(ws.send(event("r-0", "a-r")));
  CHECK(type_of(read_reply(ws, "q-0", &others)) == "decision");
  CHECK(type_of(read_reply(ws, "r-0", &others)) == "decision");

  std::optional<std::uint64_t> active;
  for (int i = 0; i < 500 && (active = metric(srv.port(), "nudge_profiles_active")) != 2u; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(active == 2u);
  int status = 0;
  auto p = profile_by_identity(srv, "anonymous_id:a-p", &status);
  CHECK(status == 200);
  ws.close();
  CHECK(srv.stop(SIGTERM) == 0);
  INFO(srv.output());
  CHECK(srv.output().find("did not leave") == std::string::npos);
}
