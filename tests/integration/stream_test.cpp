// The WebSocket stream against the real binary: decisions, encodings, errors,
// idempotency, hostile input and slow clients.
#include "actors/wire.hpp"
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <fstream>
#include <random>
#include <set>

using namespace nudge::test;

namespace {

std::string consent_all(const std::string& id, const std::string& anon) {
  return R"({"type":"consent","id":")" + id + R"(","identities":{"anonymous_id":")" + anon +
         R"("},"purposes":{"analytics":"granted","personalization":"granted"}})";
}

std::string event(const std::string& id, const std::string& anon, const std::string& name,
                  const std::string& extra = "") {
  return R"({"type":"event","id":")" + id + R"(","name":")" + name + R"(","identities":{"anonymous_id":")" + anon +
         "\"}" + extra + "}";
}

std::string actions_of(const rapidjson::Value& reply) {
  std::string out;
  if (!reply.IsObject() || !reply.HasMember("actions"))
    return "<none>";
  for (const auto& a : reply["actions"].GetArray()) {
    out += a["action"].GetString();
    out += "/";
    out += a["channel"].GetString();
    out += "/";
    out += a["placement"].GetString();
    out += ";";
  }
  return out;
}

std::string key_query(const server_process& srv) {
  return "?key=" + srv.write_key();
}

}  // namespace

TEST_CASE("an event over the stream is answered with a decision of the active policy", "[stream][integration]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), key_query(srv)) == 101);
  REQUIRE(ws.send(consent_all("c-1", "a-1")));
  auto ack = read_reply(ws, "c-1");
  REQUIRE(std::string(ack["type"].GetString()) == "ack");
  std::string profile = ack["profile_id"].GetString();
  REQUIRE(ws.send(event("e-1", "a-1", "page_view", R"(,"explain":true)")));
  auto d = read_reply(ws, "e-1");
  REQUIRE(std::string(d["type"].GetString()) == "decision");
  CHECK(std::string(d["profile_id"].GetString()) == profile);
  CHECK(std::string(d["policy_version"].GetString()) == "retail-example-1");
  CHECK(std::string(d["decision_id"].GetString()).rfind("d-", 0) == 0);
  CHECK(actions_of(d) == "welcome/web/banner;");
  REQUIRE(d.HasMember("explain"));
  CHECK(std::string(d["explain"]["promo_sku42"]["reason"].GetString()) == "condition_false");
}

TEST_CASE("JSON and MessagePack frames give the same decisions", "[stream][integration]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), key_query(srv)) == 101);
  std::vector<std::string> script = {
    consent_all("ID-c", "ANON"),
    event("ID-1", "ANON", "page_view"),
    event("ID-2", "ANON", "product_view", R"(,"properties":{"sku":"SKU-42","category":"shoes","price":49.0})"),
    event("ID-3", "ANON", "cart_add", R"(,"ts":"2026-01-01T08:00:00Z","properties":{"sku":"SKU-42"})"),
    event("ID-4", "ANON", "page_view"),
  };
  auto run = [&](bool msgpack, const std::string& anon) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < script.size(); ++i) {
      auto msg = script[i];
      for (auto pos = msg.find("ANON"); pos != std::string::npos; pos = msg.find("ANON")) msg.replace(pos, 4, anon);
      for (auto pos = msg.find("ID-"); pos != std::string::npos; pos = msg.find("ID-", pos + 1)) msg.replace(pos, 3, anon + "-");
      std::string id = anon + (i == 0 ? "-c" : "-" + std::to_string(i));
      if (msgpack) {
        std::string bin;
        REQUIRE(nudge::actors::json_to_msgpack(msg, bin));
        REQUIRE(ws.send(bin, false));
        bool text = true;
        auto frame = ws.read(std::chrono::seconds(10), &text);
        REQUIRE(frame);
        CHECK_FALSE(text);
        std::string json;
        REQUIRE(nudge::actors::msgpack_to_json(*frame, json));
        auto d = parse(json);
        CHECK(std::string(d["id"].GetString()) == id);
        out.push_back(actions_of(d));
      } else {
        REQUIRE(ws.send(msg));
        auto d = read_reply(ws, id);
        out.push_back(actions_of(d));
      }
    }
    return out;
  };
  auto json = run(false, "a-json");
  auto bin = run(true, "a-bin");
  CHECK(json == bin);
  CHECK(json.back() == "cart_recovery/web/banner;");
}

TEST_CASE("each error of the contract is answered and the connection keeps serving", "[stream][integration]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), key_query(srv)) == 101);
  struct bad {
    std::string msg;
    std::string code;
    const char* id;
  };
  std::vector<bad> cases = {
    {"{not json", "invalid_message", nullptr},
    {R"({"type":"event","id":"x1","identities":{"anonymous_id":"a"}})", "invalid_message", "x1"},
    {R"({"type":"event","id":"x2","name":"Bad Name","identities":{"anonymous_id":"a"}})", "invalid_message", "x2"},
    {R"({"type":"event","id":"x3","name":"ok","identities":{"shoe_size":"44"}})", "unknown_identity_type", "x3"},
    {R"({"type":"event","id":"x4","name":"ok","identities":{}})", "invalid_message", "x4"},
    {R"({"type":"event","id":"x5","name":"ok","identities":{"user_id":"null"}})", "invalid_message", "x5"},
    {R"({"type":"event","id":"x6","name":"ok","identities":{"anonymous_id":"a"},"ts":"2999-01-01T00:00:00Z"})", "invalid_message", "x6"},
    {R"({"type":"wave","id":"x7","identities":{"anonymous_id":"a"}})", "invalid_message", "x7"},
    {R"({"type":"feedback","id":"x8","identities":{"anonymous_id":"a"},"action":"no_such_action","outcome":"shown"})", "invalid_message", "x8"},
    {R"({"type":"feedback","id":"x9","identities":{"anonymous_id":"a"},"action":"welcome","outcome":"loved"})", "invalid_message", "x9"},
    {R"({"type":"consent","id":"x10","identities":{"anonymous_id":"a"},"purposes":{"telepathy":"granted"}})", "invalid_message", "x10"},
    {R"({"type":"event","id":"","name":"ok","identities":{"anonymous_id":"a"}})", "invalid_message", nullptr},
    // At most one value per identity type: a key given twice is refused, not resolved.
    {R"({"type":"event","id":"x11","name":"ok","identities":{"user_id":"u-a","user_id":"u-b"}})", "invalid_message", "x11"},
    {R"([1,2,3])", "invalid_message", nullptr},
  };
  for (const auto& c : cases) {
    INFO(c.msg);
    REQUIRE(ws.send(c.msg));
    auto frame = ws.read();
    REQUIRE(frame);
    auto d = parse(*frame);
    CHECK(std::string(d["type"].GetString()) == "error");
    CHECK(std::string(d["code"].GetString()) == c.code);
    CHECK(d["message"].GetStringLength() > 0);
    if (c.id)
      CHECK(std::string(d["id"].GetString()) == c.id);
    else
      CHECK(d["id"].IsNull());
  }
  // Nothing of the bad messages was stored: profile "a" does not exist.
  auto res = http_call(srv.port(), "GET", "/v1/profiles?identity=anonymous_id:a", "",
                       {{"Authorization", "Bearer " + srv.admin_token()}});
  CHECK(res.status == 404);
  REQUIRE(ws.send(event("ok-1", "a-2", "page_view")));
  CHECK(std::string(read_reply(ws, "ok-1")["type"].GetString()) == "decision");
}

TEST_CASE("a duplicate id is answered with the first reply and changes nothing", "[stream][integration]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), key_query(srv)) == 101);
  REQUIRE(ws.send(consent_all("c-1", "a-d")));
  read_reply(ws, "c-1");
  REQUIRE(ws.send(event("e-1", "a-d", "purchase", R"(,"properties":{"price":10})")));
  auto first = read_reply(ws, "e-1");
  REQUIRE(ws.send(event("e-1", "a-d", "purchase", R"(,"properties":{"price":10})")));
  auto second = read_reply(ws, "e-1");
  CHECK(second["duplicate"].GetBool());
  CHECK(std::string(second["decision_id"].GetString()) == first["decision_id"].GetString());
  auto res = http_call(srv.port(), "GET", std::string("/v1/profiles/") + first["profile_id"].GetString(), "",
                       {{"Authorization", "Bearer " + srv.admin_token()}});
  REQUIRE(res.status == 200);
  auto p = parse(res.body);
  CHECK(p["stats"]["events"].GetUint64() == 1);
  CHECK(p["stats"]["by_name"]["purchase"]["sum"]["price"].GetDouble() == 10.0);
}

TEST_CASE("random bytes and malformed JSON leave the connection and the process serving", "[stream][integration]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), key_query(srv)) == 101);
  std::mt19937 rng(42);
  const std::vector<std::string> fragments = {"{", "}", "\"type\"", ":", "\"event\"", ",", "[", "]", "\"id\"", "null",
                                              "1e999", "\"\\u0000\"", "true", "{\"identities\":"};
  for (int i = 0; i < 1000; ++i) {
    std::string msg;
    bool text = i % 2 == 0;
    if (text) {
      for (int k = 0; k < 1 + static_cast<int>(rng() % 12); ++k) msg += fragments[rng() % fragments.size()];
    } else {
      msg.resize(1 + rng() % 200);
      for (auto& c : msg) c = static_cast<char>(rng());
    }
    REQUIRE(ws.send(msg, text));
    auto frame = ws.read();
    REQUIRE(frame);  // every frame gets a reply
  }
  REQUIRE(ws.send(event("after", "a-r", "page_view")));
  CHECK(std::string(read_reply(ws, "after")["type"].GetString()) == "decision");
  CHECK(http_call(srv.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("a frame over max_message_bytes closes the connection with 1009", "[stream][integration]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), key_query(srv)) == 101);
  std::string big = event("big", "a-b", "page_view", R"(,"properties":{"blob":")" + std::string(70000, 'x') + "\"}");
  ws.send(big);
  CHECK_FALSE(ws.read(std::chrono::seconds(5)));
  CHECK(ws.close_code() == 1009);
  // The process still serves.
  ws_client again;
  REQUIRE(again.connect(srv.port(), key_query(srv)) == 101);
  REQUIRE(again.send(event("e-1", "a-b", "page_view")));
  CHECK(std::string(read_reply(again, "e-1")["type"].GetString()) == "decision");
}

TEST_CASE("an upgrade without a valid write key is refused with 401", "[stream][integration][auth]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client none, wrong, admin, header;
  CHECK(none.connect(srv.port(), "") == 401);
  CHECK(wrong.connect(srv.port(), "?key=wk_wrong") == 401);
  CHECK(admin.connect(srv.port(), "?key=" + srv.admin_token()) == 401);
  CHECK(header.connect(srv.port(), "", {{"Authorization", "Bearer " + srv.write_key()}}) == 101);
}

TEST_CASE("a client that never reads is dropped while others are served", "[stream][integration]") {
  temp_dir dir;
  auto cfg = dir.path / "small.toml";
  {
    std::ofstream out(cfg);
    out << "[server]\nws_max_pending_bytes = 65536\n";
  }
  auto data = dir.path / "data";
  server_process srv(data, {"--config", cfg.string()});
  // The stubborn client: a raw socket that upgrades, then writes and never reads.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket sock(ioc);
  // A small receive buffer, set before connecting so that the window the peer is told
  // matches it. Shrunk after the handshake, the kernel drops segments that no longer fit,
  // with the ACKs they carry, and both ends back off to retransmission timeouts of
  // seconds: the server then hardly receives anything (seen under ASan).
  sock.open(boost::asio::ip::tcp::v4());
  sock.set_option(boost::asio::socket_base::receive_buffer_size(4096));
  sock.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(srv.port())});
  std::string upgrade = "GET /v1/stream?key=" + srv.write_key() +
                        " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  boost::asio::write(sock, boost::asio::buffer(upgrade));
  // Masked text frames of a decide message, sent in a bounded loop.
  std::string payload = R"({"type":"decide","id":"q","identities":{"anonymous_id":"a-slow"},"explain":true})";
  std::string frame;
  frame.push_back(static_cast<char>(0x81));
  frame.push_back(static_cast<char>(0x80 | payload.size()));
  frame.append("\0\0\0\0", 4);  // zero mask
  frame += payload;
  ::fcntl(sock.native_handle(), F_SETFL, O_NONBLOCK);
  bool dropped = false;
  ws_client good;
  REQUIRE(good.connect(srv.port(), key_query(srv)) == 101);
  // Bounded by time, not by a round count: the kernel buffers megabytes of replies on
  // loopback before the server's queue grows at all, and how many rounds that takes
  // depends on the build (a sanitized server is several times slower).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int round = 0; round < 100000 && !dropped && std::chrono::steady_clock::now() < deadline; ++round) {
    for (int i = 0; i < 200; ++i) {
      auto n = ::send(sock.native_handle(), frame.data(), frame.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        dropped = true;
        break;
      }
    }
    // The other client keeps being served meanwhile.
    std::string id = "g-" + std::to_string(round);
    REQUIRE(good.send(event(id, "a-good", "page_view")));
    REQUIRE(std::string(read_reply(good, id)["type"].GetString()) == "decision");
    if (srv.output().find("dropping a WebSocket client") != std::string::npos)
      dropped = true;
  }
  CHECK(dropped);
  auto metrics = http_call(srv.port(), "GET", "/metrics");
  CHECK(metrics.body.find("nudge_ws_dropped_total 1") != std::string::npos);
}

TEST_CASE("an Origin outside a source's allowlist is refused with 403", "[stream][integration][auth]") {
  temp_dir dir;
  auto cfg = dir.path / "origins.toml";
  {
    std::ofstream out(cfg);
    out << "[[sources]]\nid = \"web\"\nkind = \"stream\"\nwrite_key = \"wk_origin_test_key\"\nchannel = \"web\"\n"
           "allowed_origins = [\"https://shop.example\"]\n";
  }
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  ws_client good, bad, none;
  CHECK(good.connect(srv.port(), "?key=wk_origin_test_key", {{"Origin", "https://shop.example"}}) == 101);
  CHECK(bad.connect(srv.port(), "?key=wk_origin_test_key", {{"Origin", "https://evil.example"}}) == 403);
  CHECK(none.connect(srv.port(), "?key=wk_origin_test_key") == 403);
  REQUIRE(good.send(event("o-1", "a-o", "page_view")));
  CHECK(std::string(read_reply(good, "o-1")["type"].GetString()) == "decision");
}

TEST_CASE("power durability syncs and still answers every message", "[stream][integration][durability]") {
  temp_dir dir;
  auto cfg = dir.path / "power.toml";
  {
    std::ofstream out(cfg);
    out << "[durability]\nmode = \"power\"\n";
  }
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), key_query(srv)) == 101);
  REQUIRE(ws.send(consent_all("c-1", "a-pw")));
  read_reply(ws, "c-1");
  for (int i = 0; i < 64; ++i)
    REQUIRE(ws.send(event("p-" + std::to_string(i), "a-pw", "page_view")));
  for (int i = 0; i < 64; ++i) {
    auto frame = ws.read();
    REQUIRE(frame);
    CHECK(std::string(parse(*frame)["type"].GetString()) == "decision");
  }
  auto res = http_call(srv.port(), "GET", "/v1/profiles?identity=anonymous_id:a-pw", "",
                       {{"Authorization", "Bearer " + srv.admin_token()}});
  CHECK(parse(res.body)["stats"]["events"].GetUint64() == 64);
}

TEST_CASE("with two io_threads every connection is served and one profile takes messages from both",
          "[stream][integration][shards]") {
  temp_dir dir;
  auto cfg = dir.path / "shards.toml";
  std::ofstream(cfg) << "[server]\nio_threads = 2\n";
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  // Connections go to the threads in turn, so four of them cover both twice.
  constexpr int clients = 4;
  constexpr int per_client = 40;
  std::vector<std::unique_ptr<ws_client>> ws;
  for (int c = 0; c < clients; ++c) {
    ws.push_back(std::make_unique<ws_client>());
    REQUIRE(ws.back()->connect(srv.port(), key_query(srv)) == 101);
  }
  REQUIRE(ws[0]->send(consent_all("c-shared", "a-shared")));
  REQUIRE(std::string(read_reply(*ws[0], "c-shared")["type"].GetString()) == "ack");
  for (int c = 0; c < clients; ++c) {
    const auto own = "a-own-" + std::to_string(c);
    REQUIRE(ws[c]->send(consent_all("c-own-" + std::to_string(c), own)));
    for (int i = 0; i < per_client; ++i) {
      const auto tag = std::to_string(c) + "-" + std::to_string(i);
      REQUIRE(ws[c]->send(event("s-" + tag, "a-shared", "page_view")));
      REQUIRE(ws[c]->send(event("o-" + tag, own, "product_view")));
    }
  }
  for (int c = 0; c < clients; ++c) {
    std::set<std::string> ids;
    for (int i = 0; i < 2 * per_client + 1; ++i) {
      auto frame = ws[c]->read();
      REQUIRE(frame);
      auto reply = parse(*frame);
      REQUIRE(reply.HasMember("id"));
      const std::string type = reply["type"].GetString();
      CHECK((type == "decision" || type == "ack"));
      ids.insert(reply["id"].GetString());
    }
    CHECK(ids.size() == 2 * per_client + 1);  // each message answered once, on its own connection
  }
  auto shared = profile_by_identity(srv, "anonymous_id:a-shared");
  CHECK(shared["stats"]["events"].GetUint64() == clients * per_client);
  for (int c = 0; c < clients; ++c)
    CHECK(profile_by_identity(srv, "anonymous_id:a-own-" + std::to_string(c))["stats"]["events"].GetUint64() ==
          per_client);
  // HTTP on both threads: two requests on two new connections.
  for (int i = 0; i < 2; ++i) {
    auto res = http_call(srv.port(), "POST", "/v1/events", event("h-" + std::to_string(i), "a-shared", "page_view"),
                         {{"Authorization", "Bearer " + srv.write_key()}, {"Content-Type", "application/json"}});
    CHECK(res.status == 200);
  }
  CHECK(profile_by_identity(srv, "anonymous_id:a-shared")["stats"]["events"].GetUint64() == clients * per_client + 2);
  for (auto& w : ws)
    w->close();
  CHECK(srv.stop(SIGTERM) == 0);
}
