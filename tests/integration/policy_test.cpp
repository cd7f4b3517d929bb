// The policy engine through the real service: retail scenarios, global caps shared by
// every profile (persisted), learned propensities fed by feedback, holdout stats.
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace nudge::test;

namespace {

std::string ev(const std::string& id, const std::string& anon, const std::string& name, const std::string& extra = "") {
  return R"({"type":"event","id":")" + id + R"(","name":")" + name + R"(","identities":{"anonymous_id":")" + anon +
         "\"}" + extra + "}";
}

std::string grant(const std::string& id, const std::string& anon) {
  return R"({"type":"consent","id":")" + id + R"(","identities":{"anonymous_id":")" + anon +
         R"("},"purposes":{"analytics":"granted","personalization":"granted"}})";
}

std::string first_action(const rapidjson::Value& d) {
  if (!d.IsObject() || !d.HasMember("actions") || d["actions"].Size() == 0)
    return "";
  return d["actions"][0]["action"].GetString();
}

std::string iso_ago(std::chrono::hours h) {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() - h);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

TEST_CASE("the retail policy: abandoned cart returns, a bought product is not promoted", "[policy][integration]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(grant("c-1", "a-cart")));
  read_reply(ws, "c-1");
  REQUIRE(ws.send(ev("e-1", "a-cart", "cart_add", R"(,"ts":")" + iso_ago(std::chrono::hours(2)) + R"(","properties":{"sku":"SKU-42"})")));
  read_reply(ws, "e-1");
  REQUIRE(ws.send(ev("e-2", "a-cart", "page_view", R"(,"explain":true)")));
  auto d = read_reply(ws, "e-2");
  CHECK(first_action(d) == "cart_recovery");
  CHECK(d["explain"]["cart_recovery"]["eligible"].GetBool());

  // Shoes viewed: promo_sku42 is offered; after buying SKU-42 it is suppressed.
  REQUIRE(ws.send(grant("c-2", "a-shoes")));
  read_reply(ws, "c-2");
  REQUIRE(ws.send(ev("e-3", "a-shoes", "product_view", R"(,"properties":{"sku":"SKU-42","category":"shoes"})")));
  CHECK(first_action(read_reply(ws, "e-3")) == "promo_sku42");
  REQUIRE(ws.send(ev("e-4", "a-shoes", "purchase", R"(,"properties":{"sku":"SKU-42","price":49.0})")));
  read_reply(ws, "e-4");
  REQUIRE(ws.send(ev("e-5", "a-shoes", "page_view", R"(,"explain":true)")));
  auto after = read_reply(ws, "e-5");
  CHECK(first_action(after) != "promo_sku42");
  CHECK(std::string(after["explain"]["promo_sku42"]["reason"].GetString()) == "suppressed");

  // Without personalization only non-personal actions and the fallback remain.
  REQUIRE(ws.send(ev("e-6", "a-anon", "page_view", R"(,"explain":true)")));
  auto anon = read_reply(ws, "e-6");
  CHECK(std::string(anon["explain"]["cart_recovery"]["reason"].GetString()) == "consent_missing");
  CHECK(std::string(anon["explain"]["cart_recovery"]["purpose"].GetString()) == "personalization");
}

TEST_CASE("a global cap counts across all profiles and survives a restart", "[policy][integration]") {
  temp_dir dir;
  auto pol = dir.path / "capped.json";
  {
    std::ofstream out(pol);
    out << R"({"version":"cap-1","actions":[{"id":"coupon","channels":["web"],"value":5,)"
           R"("global_cap":{"max":2,"per":"24h"},"payload":{"code":"C"}}],)"
           R"("fallback":{"id":"house","channels":["web"]}})";
  }
  auto data = dir.path / "data";
  {
    server_process srv(data, {"--policy", pol.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) {
      auto id = "g-" + std::to_string(i);
      REQUIRE(ws.send(ev(id, "a-cap-" + std::to_string(i), "page_view")));
      got.push_back(first_action(read_reply(ws, id)));
    }
    CHECK(got == std::vector<std::string>{"coupon", "coupon", "house"});
  }
  server_process srv(data, {"--policy", pol.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(ev("g-9", "a-cap-9", "page_view", R"(,"explain":true)")));
  auto d = read_reply(ws, "g-9");
  CHECK(first_action(d) == "house");
  CHECK(std::string(d["explain"]["coupon"]["reason"].GetString()) == "global_capped");
}

TEST_CASE("feedback teaches a learned propensity and the counts persist", "[policy][integration]") {
  temp_dir dir;
  auto pol = dir.path / "learn.json";
  {
    std::ofstream out(pol);
    out << R"({"version":"learn-1","actions":[)"
           R"({"id":"good","channels":["web"],"value":1,"propensity":{"learn":{"prior":[1,1]}}},)"
           R"({"id":"bad","channels":["web"],"value":1,"propensity":{"learn":{"prior":[1,1]}}}]})";
  }
  auto data = dir.path / "data";
  auto feedback = [](const std::string& id, const std::string& action, const std::string& outcome) {
    return R"({"type":"feedback","id":")" + id + R"(","identities":{"anonymous_id":"a-l"},"action":")" + action +
           R"(","outcome":")" + outcome + R"("})";
  };
  {
    server_process srv(data, {"--policy", pol.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    for (int i = 0; i < 40; ++i) {
      REQUIRE(ws.send(feedback("fg-" + std::to_string(i), "good", "accepted")));
      REQUIRE(ws.send(feedback("fb-" + std::to_string(i), "bad", "dismissed")));
      read_reply(ws, "fg-" + std::to_string(i));
      read_reply(ws, "fb-" + std::to_string(i));
    }
  }
  server_process srv(data, {"--policy", pol.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  int good = 0;
  for (int i = 0; i < 50; ++i) {
    auto id = "d-" + std::to_string(i);
    REQUIRE(ws.send(R"({"type":"decide","id":")" + id + R"(","identities":{"anonymous_id":"a-l2"}})"));
    if (first_action(read_reply(ws, id)) == "good")
      ++good;
  }
  CHECK(good >= 45);
}

TEST_CASE("a holdout group gets only the fallback and is reported in /v1/stats", "[policy][integration]") {
  temp_dir dir;
  auto pol = dir.path / "holdout.json";
  {
    std::ofstream out(pol);
    out << R"({"version":"h-1","holdout":0.5,"holdout_salt":"s1","actions":[{"id":"offer","channels":["web"]}],)"
           R"("fallback":{"id":"house","channels":["web"]}})";
  }
  server_process srv(dir.path / "data", {"--policy", pol.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  int control = 0, treatment = 0;
  for (int i = 0; i < 60; ++i) {
    auto id = "h-" + std::to_string(i);
    REQUIRE(ws.send(ev(id, "a-h" + std::to_string(i), "page_view")));
    auto d = read_reply(ws, id);
    if (d.HasMember("holdout") && d["holdout"].GetBool()) {
      ++control;
      CHECK(first_action(d) == "house");
    } else {
      ++treatment;
      CHECK(first_action(d) == "offer");
    }
  }
  CHECK(control > 5);
  CHECK(treatment > 5);
  auto stats = parse(http_call(srv.port(), "GET", "/v1/stats", "", {{"Authorization", "Bearer " + srv.admin_token()}}).body);
  CHECK(stats["holdout"]["control"]["decisions"].GetUint64() == static_cast<std::uint64_t>(control));
  CHECK(stats["holdout"]["treatment"]["decisions"].GetUint64() == static_cast<std::uint64_t>(treatment));
}

TEST_CASE("consent changes hold for the very next message, also when set by an operator", "[policy][integration][consent]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  std::vector<std::pair<std::string, std::string>> admin = {{"Authorization", "Bearer " + srv.admin_token()},
                                                            {"Content-Type", "application/json"}};
  REQUIRE(ws.send(R"({"type":"consent","id":"c-0","identities":{"anonymous_id":"a-cs"},"purposes":{"analytics":"granted"}})"));
  std::string profile = read_reply(ws, "c-0")["profile_id"].GetString();
  REQUIRE(ws.send(ev("e-1", "a-cs", "cart_add", R"(,"ts":")" + iso_ago(std::chrono::hours(2)) + "\"")));
  read_reply(ws, "e-1");
  REQUIRE(ws.send(ev("e-2", "a-cs", "page_view", R"(,"explain":true)")));
  auto before = read_reply(ws, "e-2");
  CHECK(std::string(before["explain"]["cart_recovery"]["reason"].GetString()) == "consent_missing");

  auto put = http_call(srv.port(), "PUT", "/v1/profiles/" + profile + "/consent",
                       R"({"purposes":{"personalization":"granted"},"source":"support-call"})", admin);
  REQUIRE(put.status == 200);
  auto state = parse(put.body);
  CHECK(std::string(state["consent"]["personalization"]["state"].GetString()) == "granted");
  CHECK(std::string(state["consent"]["personalization"]["source"].GetString()) == "support-call");
  REQUIRE(ws.send(ev("e-3", "a-cs", "page_view")));
  CHECK(first_action(read_reply(ws, "e-3")) == "cart_recovery");

  REQUIRE(ws.send(R"({"type":"consent","id":"c-1","identities":{"anonymous_id":"a-cs"},"purposes":{"personalization":"denied"}})"));
  read_reply(ws, "c-1");
  REQUIRE(ws.send(ev("e-4", "a-cs", "page_view")));
  CHECK(first_action(read_reply(ws, "e-4")) != "cart_recovery");

  // Withdrawing analytics purges the retained history and stats.
  REQUIRE(ws.send(R"({"type":"consent","id":"c-2","identities":{"anonymous_id":"a-cs"},"purposes":{"analytics":"denied"}})"));
  read_reply(ws, "c-2");
  auto p = parse(http_call(srv.port(), "GET", "/v1/profiles/" + profile, "", admin).body);
  CHECK(p["stats"]["events"].GetUint64() == 0);
  CHECK(p["recent_events"].Size() == 0);
  CHECK(http_call(srv.port(), "PUT", "/v1/profiles/p-nope/consent", R"({"purposes":{"analytics":"granted"}})", admin).status == 404);
  CHECK(http_call(srv.port(), "PUT", "/v1/profiles/" + profile + "/consent", R"({"purposes":{"telepathy":"granted"}})", admin).status == 400);
}
