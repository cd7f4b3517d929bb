// Secrets and personal data in what the service prints (stdout and its log on stderr):
// write keys, webhook secrets and the admin token appear only in the one notice that
// announces a freshly generated key, never in a log line; identity values never
// appear at all. The test drives every path that logs (refused keys, bad signatures,
// a failing journal commit, shutdown) with recognisable values, then searches.
#include "tests/integration/harness.hpp"

#include <boost/algorithm/string/replace.hpp>
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>

using namespace nudge::test;

namespace {

const std::string webhook_secret = "whsec_LOGCHECK_7f3a9";
const std::string email = "Jane.LogCheck@Example.org";
const std::string phone = "+44 20 7946 0312";

std::string config() {
  return R"([durability]
mode = "power"

[[sources]]
id = "web"
kind = "stream"
channel = "web"

[[sources]]
id = "helpdesk"
kind = "webhook"
secret = ")" + webhook_secret + R"("
channel = "support"

  [sources.map]
  id = "/delivery_id"
  name = "/event"
  identities.email = "/email"
  identities.phone = "/phone"

  [sources.map.names]
  "ticket.created" = "support_ticket_opened"
)";
}

std::string event(const std::string& id) {
  return R"({"type":"event","id":")" + id + R"(","name":"page_view","identities":{"email":")" + email +
         R"(","phone":")" + phone + R"(","user_id":"u-LOGCHECK-1"}})";
}

/// Every occurrence of `needle` in `haystack` outside the lines in `allowed`.
std::vector<std::string> lines_with(const std::string& haystack, const std::string& needle) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < haystack.size()) {
    auto end = haystack.find('\n', start);
    if (end == std::string::npos) end = haystack.size();
    auto line = haystack.substr(start, end - start);
    if (line.find(needle) != std::string::npos)
      out.push_back(line);
    start = end + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("keys, secrets, tokens and identity values never appear in the service's log",
          "[security][integration]") {
  temp_dir dir;
  auto cfg = dir.path / "nudge.toml";
  std::ofstream(cfg) << config();
  const auto data = dir.path / "data";
  sync_shim shim(dir);
  const std::vector<std::string> wrong_keys = {"wk_LOGCHECK_wrong_key", "adm_LOGCHECK_wrong_token"};
  std::string output, key, admin;
  {
    server_process srv(data, {"--config", cfg.string()}, shim.env(data));
    key = srv.write_key();
    admin = srv.admin_token();
    REQUIRE(key.size() > 20);
    // Refused credentials, over WebSocket and HTTP.
    ws_client bad;
    CHECK(bad.connect(srv.port(), "?key=" + wrong_keys[0]) == 401);
    CHECK(http_call(srv.port(), "POST", "/v1/events", event("e-0"),
                    {{"Authorization", "Bearer " + wrong_keys[0]}, {"Content-Type", "application/json"}}).status == 401);
    CHECK(http_call(srv.port(), "GET", "/v1/stats", "", {{"Authorization", "Bearer " + wrong_keys[1]}}).status == 401);
    // Accepted messages carrying identities, and an invalid one echoing them.
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + key) == 101);
    REQUIRE(ws.send(event("e-1")));
    CHECK(read_reply(ws, "e-1").IsObject());
    REQUIRE(ws.send(R"({"type":"event","id":"e-2","name":"x","identities":{"email":")" + email + R"(","iban":"DE00"}})"));
    CHECK(read_reply(ws, "e-2").IsObject());
    CHECK(http_call(srv.port(), "GET", "/v1/profiles?identity=email:" + email, "",
                    {{"Authorization", "Bearer " + admin}}).status == 200);
    // Webhooks: unsigned, badly signed.
    const std::string body = R"({"delivery_id":"d-1","event":"ticket.created","email":")" + email + R"("})";
    CHECK(http_call(srv.port(), "POST", "/v1/webhooks/helpdesk", body, {{"Content-Type", "application/json"}}).status == 401);
    CHECK(http_call(srv.port(), "POST", "/v1/webhooks/helpdesk", body,
                    {{"Content-Type", "application/json"},
                     {"Nudge-Signature", "t=1,v1=" + std::string(64, 'a')}}).status == 401);
    // A failing journal commit logs an error about the batch.
    shim.fail_syncs(1, 5);
    REQUIRE(ws.send(event("e-3")));
    CHECK(std::string(read_reply(ws, "e-3")["type"].GetString()) == "error");
    ws.close();
    CHECK(srv.stop(SIGTERM) == 0);
    output = srv.output();
  }
  INFO(output);
  // The paths above did log (so the search below is not vacuous).
  CHECK_FALSE(lines_with(output, "journal commit").empty());
  CHECK_FALSE(lines_with(output, "shutting down").empty());

  // A generated key is announced once, in its own notice line, and nowhere else.
  CHECK(lines_with(output, key).size() == 1);
  CHECK(lines_with(output, key)[0].rfind("write key for source web (saved in ", 0) == 0);
  CHECK(lines_with(output, admin).size() == 1);
  CHECK(lines_with(output, admin)[0].rfind("admin token (saved in ", 0) == 0);
  // The temp dir's random name can hold a run of the searched digits by chance
  // ("447946" did once, in a TSan run): it is taken out before the search.
  const std::string scrubbed = boost::algorithm::replace_all_copy(output, dir.path.string(), "<dir>");
  for (const std::string& secret : {webhook_secret, wrong_keys[0], wrong_keys[1], email, std::string("jane.logcheck"),
                                    std::string("LogCheck@"), phone, std::string("447946"), std::string("u-LOGCHECK")})
    CHECK(lines_with(scrubbed, secret).empty());

  // A restart finds the keys in their files and prints none of them.
  server_process again(data, {"--config", cfg.string()});
  CHECK(again.stop(SIGTERM) == 0);
  auto second = again.output();
  INFO(second);
  CHECK(lines_with(second, key).empty());
  CHECK(lines_with(second, admin).empty());
  CHECK_FALSE(lines_with(second, "write key for source web in ").empty());
}
