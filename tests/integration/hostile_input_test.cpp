// Hostile bodies against the real binary: JSON nested millions of levels deep (which
// once overflowed a gateway thread's stack: recursive parsing) over HTTP, WebSocket
// (JSON and MessagePack) and a signed webhook. Each gets a clear error, and the
// process keeps serving.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace nudge::test;

namespace {

std::string deep_event(const std::string& id, int depth) {
  std::string s = R"({"type":"event","id":")" + id + R"(","name":"x","identities":{"anonymous_id":"a-h"},"properties":{"p":)";
  s.append(static_cast<std::size_t>(depth), '[');
  s.append(static_cast<std::size_t>(depth), ']');
  return s + "}}";
}

std::string type_of(const rapidjson::Document& d) {
  return d.IsObject() && d.HasMember("type") && d["type"].IsString() ? d["type"].GetString() : "";
}

}  // namespace

TEST_CASE("JSON nested millions of levels deep is refused on every path and the process keeps serving",
          "[security][integration][hostile]") {
  temp_dir dir;
  auto cfg = dir.path / "nudge.toml";
  std::ofstream(cfg) << R"([server]
max_message_bytes = "16MiB"

[[sources]]
id = "web"
kind = "stream"
channel = "web"

[[sources]]
id = "helpdesk"
kind = "webhook"
secret = "whsec_hostile"
channel = "support"

  [sources.map]
  id = "/delivery_id"
  name = "/event"
  identities.anonymous_id = "/who"
  properties.p = "/p"

  [sources.map.names]
  "ticket.created" = "support_ticket_opened"
)";
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  const int depth = 2 << 20;  // 4 MiB of brackets

  SECTION("POST /v1/events: 400 invalid_message") {
    auto res = http_call(srv.port(), "POST", "/v1/events", std::string(static_cast<std::size_t>(depth), '['),
                         {{"Authorization", "Bearer " + srv.write_key()}, {"Content-Type", "application/json"}});
    CHECK(res.status == 400);
    res = http_call(srv.port(), "POST", "/v1/events", deep_event("e-h1", depth),
                    {{"Authorization", "Bearer " + srv.write_key()}, {"Content-Type", "application/json"}});
    CHECK(res.status == 400);
    CHECK(res.body.find("nested deeper than 8") != std::string::npos);
  }
  SECTION("WebSocket text and binary frames: an error reply, the connection stays") {
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    REQUIRE(ws.send(deep_event("e-h2", depth)));
    auto reply = read_reply(ws, "e-h2");
    CHECK(type_of(reply) == "error");
    CHECK(std::string(reply["code"].GetString()) == "invalid_message");
    REQUIRE(ws.send(std::string(static_cast<std::size_t>(depth), '\x91'), false));
    auto frame = ws.read();
    REQUIRE(frame);
    REQUIRE(ws.send(R"({"type":"event","id":"e-ok","name":"x","identities":{"anonymous_id":"a-h"}})"));
    CHECK(type_of(read_reply(ws, "e-ok")) == "decision");
  }
  SECTION("a signed webhook: 422 naming the depth") {
    std::string body = R"({"delivery_id":"d-1","event":"ticket.created","who":"a-h","p":)";
    body.append(static_cast<std::size_t>(depth), '[');
    body.append(static_cast<std::size_t>(depth), ']');
    body += "}";
    auto body_file = dir.path / "body.json";
    std::ofstream(body_file, std::ios::binary) << body;
    std::string out;
    REQUIRE(run_nudge({"sign", "--secret", "whsec_hostile", body_file.string()}, out) == 0);
    auto sig = out.substr(out.find(": ") + 2);
    while (!sig.empty() && (sig.back() == '\n' || sig.back() == '\r')) sig.pop_back();
    auto res = http_call(srv.port(), "POST", "/v1/webhooks/helpdesk", body,
                         {{"Content-Type", "application/json"}, {"Nudge-Signature", sig}});
    CHECK(res.status == 422);
    CHECK(res.body.find("nests deeper than 64") != std::string::npos);
  }
  CHECK(http_call(srv.port(), "GET", "/readyz").status == 200);
}
