// Per-source token buckets (`rate_limit = { per_second, burst }`): over the limit a
// stream message is answered `rate_limited`, an HTTP request 429, a webhook 429; and
// nothing of a refused message is stored.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace nudge::test;

namespace {

const char* config_text = R"([consent]
default = "granted"

[[sources]]
id = "web"
kind = "stream"
write_key = "wk_web_limited"
channel = "web"
rate_limit = { per_second = 1, burst = 3 }

[[sources]]
id = "app"
kind = "stream"
write_key = "wk_app_free"
channel = "mobile"
)";

std::string event(const std::string& id) {
  return R"({"type":"event","id":")" + id + R"(","name":"page_view","identities":{"anonymous_id":"a-limited"}})";
}

}  // namespace

TEST_CASE("a source over its rate limit is answered rate_limited and 429, and nothing is stored", "[limits][integration]") {
  temp_dir dir;
  auto config = dir.path / "nudge.toml";
  std::ofstream(config) << config_text;
  server_process srv(dir.path / "data", {"--config", config.string()});

  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=wk_web_limited") == 101);
  for (int i = 0; i < 6; ++i)
    REQUIRE(ws.send(event("e-" + std::to_string(i))));
  int decided = 0, limited = 0;
  for (int i = 0; i < 6; ++i) {
    auto frame = ws.read();
    REQUIRE(frame);
    auto d = parse(*frame);
    std::string type = d["type"].GetString();
    if (type == "decision")
      ++decided;
    else if (type == "error" && std::string(d["code"].GetString()) == "rate_limited")
      ++limited;
  }
  // The bucket holds 3 and refills 1/s: at least 3 pass, and the rest of a burst
  // sent within a second or two is refused.
  CHECK(decided >= 3);
  CHECK(decided <= 5);
  CHECK(limited == 6 - decided);

  // HTTP: a batch larger than the bucket is refused whole with 429.
  std::string batch = R"({"batch":[)";
  for (int i = 0; i < 5; ++i)
    batch += (i ? "," : "") + event("h-" + std::to_string(i));
  batch += "]}";
  auto res = http_call(srv.port(), "POST", "/v1/events", batch,
                       {{"Authorization", "Bearer wk_web_limited"}, {"Content-Type", "application/json"}});
  CHECK(res.status == 429);
  CHECK(parse(res.body)["error"]["code"].GetString() == std::string("rate_limited"));

  // Another source has its own (absent) limit; the profile counts only accepted events.
  ws_client app;
  REQUIRE(app.connect(srv.port(), "?key=wk_app_free") == 101);
  REQUIRE(app.send(R"({"type":"event","id":"m-1","name":"app_open","identities":{"anonymous_id":"a-limited"}})"));
  CHECK(std::string(read_reply(app, "m-1")["type"].GetString()) == "decision");
  auto p = http_call(srv.port(), "GET", "/v1/profiles?identity=anonymous_id:a-limited", "",
                     {{"Authorization", "Bearer " + srv.admin_token()}});
  REQUIRE(p.status == 200);
  CHECK(parse(p.body)["stats"]["events"].GetUint64() == static_cast<std::uint64_t>(decided + 1));

  // One message over HTTP: 429 with an HTTP error that names the message.
  http_result single;
  for (int i = 0; i < 20 && single.status != 429; ++i)
    single = http_call(srv.port(), "POST", "/v1/events", event("s-" + std::to_string(i)),
                       {{"Authorization", "Bearer wk_web_limited"}, {"Content-Type", "application/json"}});
  INFO(single.body);
  REQUIRE(single.status == 429);
  auto e = parse(single.body);
  REQUIRE(e.HasMember("error"));
  CHECK(e["error"]["code"].GetString() == std::string("rate_limited"));
  REQUIRE(e["error"].HasMember("id"));
  REQUIRE(e["error"]["id"].IsString());
  CHECK(std::string(e["error"]["id"].GetString()).rfind("s-", 0) == 0);
}
