// The public edge against clients that misbehave on purpose, through the real binary:
// slow headers, slow bodies and stalled upgrades (closed after `http_timeout`), headers
// over the limit (431), connections past `max_connections` (503, then accepted again
// once others close), fragmented, oversize and trickled WebSocket messages, and a client asking
// for permessage-deflate (not agreed). Other clients are served meanwhile. Every wait
// is bounded; none asserts how long anything took.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <functional>

using namespace nudge::test;
using namespace std::chrono_literals;

namespace {

const std::string write_key = "wk_edge";

/// A server with one stream source `web` (write key wk_edge) and `server_keys` in [server].
struct edge_server {
  temp_dir dir;
  std::unique_ptr<server_process> srv;

  explicit edge_server(const std::string& server_keys) {
    auto cfg = write_config(dir.path, "[server]\n" + server_keys +
                                        "\n[[sources]]\nid = \"web\"\nkind = \"stream\"\nwrite_key = \"" + write_key +
                                        "\"\nchannel = \"web\"\n");
    srv = std::make_unique<server_process>(dir.path / "data", std::vector<std::string>{"--config", cfg.string()});
  }
  int port() const { return srv->port(); }
};

std::string event(const std::string& id, const std::string& who, const std::string& padding = "") {
  std::string props = padding.empty() ? "" : R"(,"properties":{"pad":")" + padding + R"("})";
  return R"({"type":"event","id":")" + id + R"(","name":"page_view","identities":{"anonymous_id":")" + who + "\"}" +
         props + "}";
}

std::string type_of(const rapidjson::Document& d) {
  return d.IsObject() && d.HasMember("type") && d["type"].IsString() ? d["type"].GetString() : "";
}

/// An event on `ws` is answered with its decision (the connection serves).
bool serves(ws_client& ws, const std::string& id) {
  return ws.send(event(id, "a-" + id)) && type_of(read_reply(ws, id)) == "decision";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// What the server answers `request` on a new connection before closing it; "" when
/// it has not closed it within 10 s.
std::string answer_then_close(int port, const std::string& request) {
  raw_conn c(port);
  c.send(request);
  return c.wait_closed(10s) ? c.received() : "";
}

std::string upgrade_request(const std::string& extra_headers) {
  return "GET /v1/stream?key=" + write_key +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         extra_headers + "\r\n";
}

/// Sends the upgrade on `c` and returns the answer's head (status line and headers),
/// "" when none came within 10 s.
std::string upgrade(raw_conn& c, const std::string& extra_headers) {
  if (!c.send(upgrade_request(extra_headers)) || !c.read_until("\r\n\r\n", 10s))
    return "";
  return c.received().substr(0, c.received().find("\r\n\r\n"));
}

}  // namespace

TEST_CASE("slow-header, slow-body and stalled-upgrade clients are closed after http_timeout while others are served",
          "[edge][integration][security]") {
  edge_server s("http_timeout = \"1s\"\n");
  raw_conn partial_header(s.port());
  REQUIRE(partial_header.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  raw_conn slow_body(s.port());
  REQUIRE(slow_body.send("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + write_key +
                         "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" +
                         R"({"type":"event","id":"e-slow","name":"page_view",)"));
  raw_conn stalled_upgrade(s.port());
  REQUIRE(stalled_upgrade.send("GET /v1/stream?key=" + write_key +
                               " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
  raw_conn trickle(s.port());
  REQUIRE(trickle.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: "));

  // Meanwhile the service answers everyone else.
  CHECK(http_call(s.port(), "GET", "/healthz").status == 200);
  {
    ws_client ws;
    REQUIRE(ws.connect(s.port(), "?key=" + write_key) == 101);
    CHECK(serves(ws, "e-during"));
  }

  // One byte every 100 ms does not extend the deadline: it covers the whole request.
  for (int i = 0; i < 200 && !trickle.closed(); ++i) {
    trickle.send("x");
    trickle.wait_closed(100ms);
  }
  CHECK(trickle.closed());
  CHECK(partial_header.wait_closed(15s));
  CHECK(slow_body.wait_closed(15s));
  CHECK(stalled_upgrade.wait_closed(15s));
  // Closed without an answer (nothing of a request that never completed is acted on).
  CHECK(partial_header.received().empty());
  CHECK(slow_body.received().empty());
  CHECK(stalled_upgrade.received().empty());
  CHECK(trickle.received().empty());
  CHECK(http_call(s.port(), "GET", "/v1/profiles?identity=anonymous_id:a-slow", "",
                  {{"Authorization", "Bearer " + s.srv->admin_token()}}).status == 404);
  CHECK(http_call(s.port(), "GET", "/readyz").status == 200);
}

TEST_CASE("request headers or a request line over 16 KiB get 431 with a clear body", "[edge][integration][security]") {
  edge_server s("");
  const std::string get = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  SECTION("a header just under the limit is served") {
    CHECK(answer_then_close(s.port(), get + "X-Big: " + std::string(15000, 'a') + "\r\nConnection: close\r\n\r\n")
            .rfind("HTTP/1.1 200", 0) == 0);
  }
  SECTION("one header of 20 KiB") {
    auto got = answer_then_close(s.port(), get + "X-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    CHECK(got.rfind("HTTP/1.1 431", 0) == 0);
    CHECK(got.find(R"({"error":{"code":"too_large","message":"the request line and headers are over 16 KiB"}})") !=
          std::string::npos);
    CHECK(lower(got).find("connection: close") != std::string::npos);
  }
  SECTION("many headers adding up past the limit") {
    std::string headers;
    for (int i = 0; i < 2000; ++i) headers += "X-H" + std::to_string(i) + ": value\r\n";
    CHECK(answer_then_close(s.port(), get + headers + "\r\n").rfind("HTTP/1.1 431", 0) == 0);
  }
  SECTION("a request line of 20 KiB, complete or never ended") {
    CHECK(answer_then_close(s.port(), "GET /healthz?" + std::string(20000, 'q') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .rfind("HTTP/1.1 431", 0) == 0);
    auto got = answer_then_close(s.port(), "GET /" + std::string(20000, 'q'));
    CHECK(got.rfind("HTTP/1.1 431", 0) == 0);
    CHECK(got.find("too_large") != std::string::npos);
  }
  CHECK(http_call(s.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("connections past max_connections get 503 overloaded; existing ones keep working and new ones are accepted "
          "once others close",
          "[edge][integration][security]") {
  edge_server s("max_connections = 3\n");
  std::vector<std::unique_ptr<ws_client>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<ws_client>());
    REQUIRE(open.back()->connect(s.port(), "?key=" + write_key) == 101);
  }
  auto extra = answer_then_close(s.port(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(extra.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(extra.find(R"("code":"overloaded")") != std::string::npos);
  CHECK(extra.find("max_connections") != std::string::npos);
  ws_client refused;
  CHECK(refused.connect(s.port(), "?key=" + write_key) == 503);
  CHECK(http_call(s.port(), "GET", "/healthz").status == 503);

  for (std::size_t i = 0; i < open.size(); ++i)
    CHECK(serves(*open[i], "e-open-" + std::to_string(i)));

  open[0]->close();
  open[1]->close();
  // The server notices the closes on its own time: poll, bounded.
  int status = 0;
  for (int i = 0; i < 200 && status != 200; ++i) {
    status = http_call(s.port(), "GET", "/healthz").status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  REQUIRE(status == 200);
  ws_client later;
  REQUIRE(later.connect(s.port(), "?key=" + write_key) == 101);
  CHECK(serves(later, "e-later"));
  CHECK(serves(*open[2], "e-still"));
  later.close();
  open[2]->close();
  // Counted: the raw client, the refused upgrade, the refused healthz at least.
  auto metrics = http_call(s.port(), "GET", "/metrics").body;
  auto at = metrics.find("\nnudge_connections_refused_total ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stoi(metrics.substr(at + 33)) >= 3);
}

TEST_CASE("connections from one address past max_connections_per_address get 503; other addresses are served, and "
          "a closed WebSocket gives its place back",
          "[edge][integration][security]") {
  edge_server s("max_connections_per_address = 2\n");
  ws_client ws;
  REQUIRE(ws.connect(s.port(), "?key=" + write_key) == 101);
  raw_conn idle(s.port());
  REQUIRE(idle.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  REQUIRE(idle.read_until("\r\n\r\n", 10s));  // accepted, kept alive

  // A third from 127.0.0.1 is refused; 127.0.0.2 is another address.
  auto extra = answer_then_close(s.port(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK(extra.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(extra.find(R"("code":"overloaded")") != std::string::npos);
  CHECK(extra.find("max_connections_per_address") != std::string::npos);
  {
    raw_conn other(s.port(), "127.0.0.2");
    REQUIRE(other.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
    CHECK(other.wait_closed(10s));
    CHECK(other.received().rfind("HTTP/1.1 200", 0) == 0);
  }
  CHECK(serves(ws, "e-per-address"));

  // The upgraded connection held its place until it closed.
  ws.close();
  int status = 0;
  for (int i = 0; i < 200 && status != 200; ++i) {
    status = http_call(s.port(), "GET", "/healthz").status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  CHECK(status == 200);
}

TEST_CASE("fragmented WebSocket messages are assembled, a ping between fragments is answered, and a fragmented "
          "message over max_message_bytes closes with 1009",
          "[edge][integration][security]") {
  edge_server s("max_message_bytes = 1024\n");
  ws_client ws;
  REQUIRE(ws.connect(s.port(), "?key=" + write_key) == 101);
  const auto msg = event("e-frag", "a-frag");
  std::vector<std::string> parts{msg.substr(0, 10), msg.substr(10, 25), msg.substr(35)};

  SECTION("continuation frames") {
    REQUIRE(ws.send_fragments(parts));
    auto reply = read_reply(ws, "e-frag");
    CHECK(type_of(reply) == "decision");
  }
  SECTION("a ping between fragments") {
    REQUIRE(ws.send_fragments(parts, true, true));
    auto reply = read_reply(ws, "e-frag");
    CHECK(type_of(reply) == "decision");
  }
  // The message was applied once: the same id as one frame is a duplicate.
  REQUIRE(ws.send(msg));
  auto again = read_reply(ws, "e-frag");
  CHECK(type_of(again) == "decision");
  CHECK((again.HasMember("duplicate") && again["duplicate"].IsTrue()));

  // Each fragment is under the limit; the message is not.
  ws_client big;
  REQUIRE(big.connect(s.port(), "?key=" + write_key) == 101);
  const auto large = event("e-big", "a-big", std::string(1500, 'p'));
  big.send_fragments({large.substr(0, 600), large.substr(600, 600), large.substr(1200)});
  CHECK_FALSE(big.read(10s));
  CHECK(big.close_code() == 1009);
  CHECK(serves(ws, "e-after-big"));
  CHECK(http_call(s.port(), "GET", "/v1/profiles?identity=anonymous_id:a-big", "",
                  {{"Authorization", "Bearer " + s.srv->admin_token()}}).status == 404);
}

TEST_CASE("a client offering permessage-deflate gets no compression, and a peer silent after the upgrade is closed "
          "at ws_idle_timeout",
          "[edge][integration][security]") {
  edge_server s("ws_idle_timeout = \"1s\"\n");
  raw_conn c(s.port());
  const auto head = upgrade(c, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
  REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);
  CHECK(lower(head).find("sec-websocket-extensions") == std::string::npos);

  SECTION("a frame claiming compression (RSV1) fails the connection") {
    // FIN|RSV1|text, masked, 2 bytes "{}" under a zero mask.
    REQUIRE(c.send(std::string("\xC1\x82\0\0\0\0{}", 8)));
    CHECK(c.wait_closed(10s));
  }
  SECTION("a peer that stops mid-frame is pinged, then closed") {
    REQUIRE(c.send(std::string("\x81", 1)));  // the first byte of a frame header, then nothing
    CHECK(c.wait_closed(15s));
  }
  ws_client ws;
  REQUIRE(ws.connect(s.port(), "?key=" + write_key) == 101);
  CHECK(serves(ws, "e-deflate-after"));
}

TEST_CASE("a WebSocket message trickled in fragments or bytes is closed after http_timeout, though each byte "
          "resets the idle timeout; others are served",
          "[edge][integration][security]") {
  edge_server s("http_timeout = \"1s\"\nws_idle_timeout = \"60s\"\n");
  raw_conn c(s.port());
  REQUIRE(upgrade(c, "").rfind("HTTP/1.1 101", 0) == 0);
  // Client frames are masked; a zero mask leaves the payload as written.
  const std::string zero_mask(4, '\0');
  std::function<bool(int)> trickle_one;
  SECTION("one continuation frame of one byte every 100 ms") {
    REQUIRE(c.send(std::string("\x01\x81", 2) + zero_mask + "{"));  // text, not FIN
    trickle_one = [&](int) { return c.send(std::string("\x00\x81", 2) + zero_mask + " "); };
  }
  SECTION("one empty continuation frame every 100 ms") {
    REQUIRE(c.send(std::string("\x01\x81", 2) + zero_mask + "{"));
    trickle_one = [&](int) { return c.send(std::string("\x00\x80", 2) + zero_mask); };
  }
  SECTION("one byte of a 100-byte frame every 100 ms") {
    REQUIRE(c.send(std::string("\x81\xE4", 2) + zero_mask + "{"));  // FIN text, 100 bytes
    trickle_one = [&](int) { return c.send(" "); };
  }
  for (int i = 0; i < 200 && !c.closed(); ++i) {
    trickle_one(i);
    c.wait_closed(100ms);
  }
  CHECK(c.closed());
  // Nothing was answered after the upgrade, and the others are served.
  CHECK(c.received().find("\r\n\r\n") + 4 == c.received().size());
  ws_client ws;
  REQUIRE(ws.connect(s.port(), "?key=" + write_key) == 101);
  CHECK(serves(ws, "e-trickle-after"));
  CHECK(metric(s.port(), "nudge_ws_dropped_total") == 1u);
}
