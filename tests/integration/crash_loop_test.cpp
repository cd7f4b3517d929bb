// Crash loop against the real binary: 20 times, several WebSocket connections stream
// events into shared profiles while the server is SIGKILLed at a random moment; it is
// restarted on the same data dir and every message that had no reply is sent again.
// At the end every message has had a reply and each was applied exactly once (the
// profiles' event counts equal the messages sent to them), and the LMDB environment
// still opens and serves (readyz).
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>

using namespace nudge::test;

namespace {

constexpr int cycles = 20;
constexpr int connections = 3;
constexpr std::size_t window = 16;  // messages in flight per connection
// New messages per connection and cycle at most: far more than fit before the kill,
// so that every kill lands mid-stream; it only bounds a kill that never comes.
constexpr int max_new_per_cycle = 1'000'000;
const std::vector<std::string> anons = {"a-cl0", "a-cl1", "a-cl2", "a-cl3"};

std::string purchase(const std::string& id, const std::string& anon) {
  return R"({"type":"event","id":")" + id + R"(","name":"purchase","identities":{"anonymous_id":")" + anon +
         R"("},"properties":{"price":2}})";
}

/// One client's messages: ids are "e-CONN-SEQ", each for anons[SEQ % anons.size()].
struct client_log {
  int conn = 0;
  int next_seq = 0;
  std::set<int> unreplied;  ///< sent (or about to be) without a reply yet
  std::set<int> replied;

  std::string id(int seq) const { return "e-" + std::to_string(conn) + "-" + std::to_string(seq); }
  const std::string& anon(int seq) const { return anons[static_cast<std::size_t>(seq) % anons.size()]; }
};

struct stream_result {
  bool all_decisions = true;  ///< every reply read was a decision, never an error
  bool cut = false;           ///< the connection died (or never opened) before the end
};

/// Streams `window` messages at a time, first those still without a reply, then up to
/// `max_new` new ones, until the connection dies or nothing is left.
stream_result stream(int port, const std::string& key, client_log& log, int max_new) {
  stream_result r;
  ws_client ws;
  if (ws.connect(port, "?key=" + key) != 101) {
    r.cut = true;  // the server was killed before this connection got in
    return r;
  }
  const std::vector<int> resend(log.unreplied.begin(), log.unreplied.end());
  std::size_t resent = 0;
  int fresh = 0;
  for (;;) {
    std::vector<int> batch;
    while (batch.size() < window && resent < resend.size()) batch.push_back(resend[resent++]);
    while (batch.size() < window && fresh < max_new) {
      batch.push_back(log.next_seq++);
      ++fresh;
    }
    if (batch.empty())
      return r;
    std::size_t sent = 0;
    for (; sent < batch.size(); ++sent) {
      log.unreplied.insert(batch[sent]);  // before sending: a failed send may still have gone out
      if (!ws.send(purchase(log.id(batch[sent]), log.anon(batch[sent])))) {
        r.cut = true;
        break;
      }
    }
    for (std::size_t i = 0; i < sent; ++i) {
      auto frame = ws.read(std::chrono::seconds(5));
      if (!frame) {
        r.cut = true;
        return r;
      }
      auto d = parse(*frame);
      if (!d.IsObject() || !d.HasMember("type") || std::string(d["type"].GetString()) != "decision") {
        r.all_decisions = false;
        continue;
      }
      const std::string id = d["id"].GetString();
      const int seq = std::stoi(id.substr(id.rfind('-') + 1));
      log.unreplied.erase(seq);
      log.replied.insert(seq);
    }
    if (r.cut)
      return r;
  }
}

}  // namespace

TEST_CASE("20 SIGKILLs under load from several connections: every replied message is applied exactly once",
          "[durability][integration][crash]") {
  // Also through the commit log, checkpointing every 100 ms: kills land in commits,
  // checkpoints and the replays of the starts before.
  const std::string config = GENERATE(std::string(), std::string("[durability]\nmode = \"power\"\npower_sync = \"log\"\n"));
  INFO("config: " << config);
  temp_dir dir;
  const auto data = dir.path / "data";
  const std::vector<std::string> args = {"--config", write_config(dir.path, config).string()};
  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::vector<client_log> logs(connections);
  for (int c = 0; c < connections; ++c) logs[static_cast<std::size_t>(c)].conn = c;

  {
    server_process srv(data, args);
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    for (const auto& a : anons) {
      REQUIRE(ws.send(R"({"type":"consent","id":"c-)" + a + R"(","identities":{"anonymous_id":")" + a +
                      R"("},"purposes":{"analytics":"granted"}})"));
      REQUIRE(read_reply(ws, "c-" + a).IsObject());
    }
    srv.stop(SIGKILL);
  }

  std::atomic<bool> only_decisions{true};
  std::atomic<int> cut_streams{0};
  for (int cycle = 0; cycle < cycles; ++cycle) {
    server_process srv(data, args);
    REQUIRE(http_call(srv.port(), "GET", "/readyz").status == 200);
    std::vector<std::thread> clients;
    for (auto& l : logs)
      clients.emplace_back([&, port = srv.port(), key = srv.write_key()] {
        auto r = stream(port, key, l, max_new_per_cycle);
        if (!r.all_decisions)
          only_decisions = false;
        if (r.cut)
          ++cut_streams;
      });
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 300)(rng)));
    srv.stop(SIGKILL);
    for (auto& t : clients) t.join();
  }
  CHECK(only_decisions);
  // Every stream ends by the kill, never by running out of messages.
  CHECK(cut_streams == cycles * connections);

  // A last start: send what still has no reply, then count.
  server_process srv(data, args);
  REQUIRE(http_call(srv.port(), "GET", "/readyz").status == 200);
  for (auto& l : logs) {
    auto r = stream(srv.port(), srv.write_key(), l, 0);
    CHECK(r.all_decisions);
    CHECK_FALSE(r.cut);
    REQUIRE(l.unreplied.empty());
  }
  std::map<std::string, std::uint64_t> sent_to;
  std::uint64_t total = 0;
  for (const auto& l : logs)
    for (int s : l.replied) {
      ++sent_to[l.anon(s)];
      ++total;
    }
  INFO("messages: " << total);
  CHECK(total > static_cast<std::uint64_t>(connections * cycles));
  for (const auto& a : anons) {
    int status = 0;
    auto p = profile_by_identity(srv, "anonymous_id:" + a, &status);
    REQUIRE(status == 200);
    CHECK(p["stats"]["events"].GetUint64() == sent_to[a]);
    CHECK(p["stats"]["by_name"]["purchase"]["count"].GetUint64() == sent_to[a]);
    CHECK(p["stats"]["by_name"]["purchase"]["sum"]["price"].GetDouble() == Approx(2.0 * static_cast<double>(sent_to[a])));
  }
  // And the environment survives a clean shutdown too.
  CHECK(srv.stop(SIGTERM) == 0);
  server_process again(data, args);
  CHECK(http_call(again.port(), "GET", "/readyz").status == 200);
  CHECK(profile_by_identity(again, "anonymous_id:" + anons[0])["stats"]["events"].GetUint64() == sent_to[anons[0]]);
}
