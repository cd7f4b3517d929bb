// Identity resolution through the real service (API.md section 5): one person across
// the phone, the laptop and the support desk; limits that keep a shared device from
// gluing strangers together; blocked placeholders; merges that survive SIGKILL; and
// many connections racing with overlapping identities.
#include "actors/wire.hpp"
#include "tests/integration/harness.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <map>
#include <set>

using namespace nudge::test;

namespace {

const char* config_text = R"([consent]
default = "granted"

[[sources]]
id = "web"
kind = "stream"
write_key = "wk_web_test_key"
channel = "web"

[[sources]]
id = "mobile"
kind = "stream"
write_key = "wk_mobile_test_key"
channel = "mobile"
)";

struct configured_server {
  temp_dir dir;
  std::unique_ptr<server_process> srv;
  std::filesystem::path config;

  configured_server() : config(dir.path / "nudge.toml") {
    std::ofstream(config) << config_text;
    start();
  }
  void start() {
    srv = std::make_unique<server_process>(dir.path / "data", std::vector<std::string>{"--config", config.string()});
  }
  int port() const { return srv->port(); }
  std::string admin() const { return "Bearer " + srv->admin_token(); }
};

std::string iso_ago(std::chrono::minutes m) {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() - m);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string event(const std::string& id, const std::string& name, const std::string& identities,
                  const std::string& extra = "") {
  return R"({"type":"event","id":")" + id + R"(","name":")" + name + R"(","identities":)" + identities + extra + "}";
}

/// doc[key] as a string, or the whole document when it has no such string (so that
/// a failed check shows what came instead).
std::string text(const rapidjson::Value& doc, const char* key) {
  if (doc.IsObject() && doc.HasMember(key) && doc[key].IsString())
    return doc[key].GetString();
  return "<no " + std::string(key) + ">";
}

rapidjson::Document lookup(const configured_server& s, const std::string& type_value, int* status = nullptr) {
  auto res = http_call(s.port(), "GET", "/v1/profiles?identity=" + type_value, "", {{"Authorization", s.admin()}});
  if (status)
    *status = res.status;
  return parse(res.body);
}

rapidjson::Document profile(const configured_server& s, const std::string& id) {
  auto res = http_call(s.port(), "GET", "/v1/profiles/" + id, "", {{"Authorization", s.admin()}});
  REQUIRE(res.status == 200);
  return parse(res.body);
}

std::string pid_of(const configured_server& s, const std::string& type_value) {
  int status = 0;
  auto doc = lookup(s, type_value, &status);
  if (status != 200)
    return "";
  return text(doc, "profile_id");
}

std::uint64_t metric(const configured_server& s, const std::string& name) {
  auto value = nudge::test::metric(s.port(), name);
  REQUIRE(value);
  return *value;
}

bool lists(const rapidjson::Value& arr, const std::string& value) {
  for (const auto& v : arr.GetArray())
    if (v.IsString() && v.GetString() == value)
      return true;
  return false;
}

std::string first_action(const rapidjson::Value& d) {
  if (!d.IsObject() || !d.HasMember("actions") || d["actions"].Size() == 0)
    return "";
  return d["actions"][0]["action"].GetString();
}

/// Mobile adds to cart as a device; the desktop logs in; the mobile app then sends
/// the same user_id: one profile. Returns {survivor, merged-away profile id}.
std::pair<std::string, std::string> phone_and_laptop(configured_server& s, ws_client& mobile, ws_client& desktop) {
  REQUIRE(mobile.connect(s.port(), "?key=wk_mobile_test_key") == 101);
  REQUIRE(desktop.connect(s.port(), "?key=wk_web_test_key") == 101);
  REQUIRE(mobile.send(event("m-1", "cart_add", R"({"device_id":"ios-5521"})",
                            R"(,"ts":")" + iso_ago(std::chrono::minutes(90)) + R"(","properties":{"sku":"SKU-42"})")));
  auto m1 = read_reply(mobile, "m-1");
  std::string mobile_pid = text(m1, "profile_id");
  REQUIRE(desktop.send(event("d-1", "page_view", R"({"anonymous_id":"a-desk"})")));
  auto d1 = read_reply(desktop, "d-1");
  std::string desktop_pid = text(d1, "profile_id");
  REQUIRE(desktop_pid != mobile_pid);
  REQUIRE(desktop.send(event("d-2", "login", R"({"anonymous_id":"a-desk","user_id":"u-jane"})")));
  CHECK(text(read_reply(desktop, "d-2"), "profile_id") == desktop_pid);
  REQUIRE(mobile.send(event("m-2", "app_open", R"({"device_id":"ios-5521","user_id":"u-jane"})")));
  auto m2 = read_reply(mobile, "m-2");
  // The oldest profile survives: the phone's, created first.
  CHECK(mobile_pid < desktop_pid);
  CHECK(text(m2, "profile_id") == mobile_pid);
  return {mobile_pid, desktop_pid};
}

}  // namespace

TEST_CASE("phone and laptop become one profile whose desktop decision sees the mobile cart", "[identity][integration]") {
  configured_server s;
  ws_client mobile, desktop;
  auto [survivor, merged] = phone_and_laptop(s, mobile, desktop);

  // The desktop connection still sends only its anonymous id: it reaches the survivor.
  REQUIRE(desktop.send(event("d-3", "page_view", R"({"anonymous_id":"a-desk"})", R"(,"explain":true)")));
  std::vector<std::string> pushed;
  auto d3 = read_reply(desktop, "d-3", &pushed);
  // The phone's message after the merge reached the laptop as a push: the mobile
  // cart, seen on the web channel.
  bool cart_pushed = false;
  for (const auto& f : pushed) {
    auto p = parse(f);
    cart_pushed = cart_pushed || (p.IsObject() && p.HasMember("id") && p["id"].IsNull() && first_action(p) == "cart_recovery");
  }
  CHECK(cart_pushed);
  INFO(text(d3, "code") + " " + text(d3, "message"));
  CHECK(text(d3, "profile_id") == survivor);
  // Its own decision sees the cart too (the segment holds), and the cap counts the
  // shows of both devices: the phone's two and the push make three of three.
  REQUIRE(d3.HasMember("explain"));
  CHECK(text(d3["explain"]["cart_recovery"], "reason") == "capped");

  for (const auto* ident : {"device_id:ios-5521", "anonymous_id:a-desk", "user_id:u-jane"})
    CHECK(pid_of(s, ident) == survivor);
  auto p = profile(s, survivor);
  CHECK(lists(p["merged_from"], merged));
  CHECK(p["identities"].Size() == 3);
  CHECK(p["stats"]["events"].GetUint64() == 5);  // m-1, d-1, d-2, m-2, d-3: none lost, none twice
  // The merged-away id stays resolvable and answers the survivor.
  auto via_old = profile(s, merged);
  CHECK(text(via_old, "profile_id") == survivor);
  CHECK(metric(s, "nudge_identity_merges_total") == 1);

  // The merge is in the survivor's audit trail: who, whom, which identities, which message.
  auto audit = http_call(s.port(), "GET", "/v1/profiles/" + survivor + "/audit", "", {{"Authorization", s.admin()}});
  REQUIRE(audit.status == 200);
  auto trail = parse(audit.body);
  bool found = false;
  for (const auto& r : trail["records"].GetArray()) {
    if (text(r, "kind") != "merge")
      continue;
    found = true;
    CHECK(text(r["detail"], "survivor") == survivor);
    CHECK(lists(r["detail"]["merged_from"], merged));
    CHECK(text(r["detail"], "message_id") == "m-2");
    CHECK(r["detail"]["identities"].Size() == 2);  // the laptop's anonymous id and user id
  }
  CHECK(found);
}

TEST_CASE("a connection that speaks MessagePack gets its pushes in MessagePack", "[identity][integration]") {
  configured_server s;
  ws_client desktop, mobile;
  REQUIRE(desktop.connect(s.port(), "?key=wk_web_test_key") == 101);
  REQUIRE(mobile.connect(s.port(), "?key=wk_mobile_test_key") == 101);
  std::string bin;
  REQUIRE(nudge::actors::json_to_msgpack(event("mp-1", "page_view", R"({"anonymous_id":"a-mp"})"), bin));
  REQUIRE(desktop.send(bin, false));
  bool text_frame = true;
  auto reply = desktop.read(std::chrono::seconds(10), &text_frame);
  REQUIRE(reply);
  CHECK_FALSE(text_frame);
  // The phone leaves a cart: the policy answers it on the web channel, a push.
  REQUIRE(mobile.send(event("mp-2", "cart_add", R"({"anonymous_id":"a-mp"})",
                            R"(,"ts":")" + iso_ago(std::chrono::minutes(90)) + R"(","properties":{"sku":"SKU-42"})")));
  read_reply(mobile, "mp-2");
  auto push = desktop.read(std::chrono::seconds(10), &text_frame);
  REQUIRE(push);
  CHECK_FALSE(text_frame);
  std::string json;
  REQUIRE(nudge::actors::msgpack_to_json(*push, json));
  auto p = parse(json);
  REQUIRE(p.IsObject());
  CHECK(p["id"].IsNull());
  CHECK(first_action(p) == "cart_recovery");
}

TEST_CASE("two user_ids on one device never merge: the second login gets its own profile", "[identity][integration]") {
  configured_server s;
  ws_client ws;
  REQUIRE(ws.connect(s.port(), "?key=wk_web_test_key") == 101);
  REQUIRE(ws.send(event("t-1", "login", R"({"device_id":"tablet-1","user_id":"u-ann"})")));
  std::string ann = text(read_reply(ws, "t-1"), "profile_id");
  REQUIRE(ws.send(event("t-2", "login", R"({"device_id":"tablet-1","user_id":"u-bob"})")));
  std::string bob = text(read_reply(ws, "t-2"), "profile_id");
  CHECK(bob != ann);
  CHECK(pid_of(s, "device_id:tablet-1") == ann);
  CHECK(pid_of(s, "user_id:u-ann") == ann);
  CHECK(pid_of(s, "user_id:u-bob") == bob);
  auto b = profile(s, bob);
  REQUIRE(b["identities"].Size() == 1);
  CHECK(std::string(b["identities"][0]["type"].GetString()) == "user_id");
  CHECK(metric(s, "nudge_identity_links_given_up_total") == 1);
  // The give-up is audited on the profile that got the message (the type, not the value).
  auto audit = http_call(s.port(), "GET", "/v1/profiles/" + bob + "/audit", "", {{"Authorization", s.admin()}});
  REQUIRE(audit.status == 200);
  bool given_up = false;
  auto trail = parse(audit.body);  // kept alive while its records are read
  for (const auto& r : trail["records"].GetArray())
    if (text(r, "kind") == "link_given_up") {
      given_up = true;
      CHECK(text(r["detail"], "type") == "device_id");
      CHECK(text(r["detail"], "message_id") == "t-2");
      CHECK_FALSE(r["detail"].HasMember("value"));
    }
  CHECK(given_up);
  CHECK(metric(s, "nudge_identity_merges_total") == 0);
  // Ann on the tablet again: still Ann's profile, untouched by Bob.
  REQUIRE(ws.send(event("t-3", "page_view", R"({"device_id":"tablet-1","user_id":"u-ann"})")));
  CHECK(text(read_reply(ws, "t-3"), "profile_id") == ann);
  CHECK(profile(s, ann)["identities"].Size() == 2);
}

TEST_CASE("a look-up by identity reads a + in the query as itself, not as a space", "[identity][integration][http]") {
  configured_server s;
  ws_client ws;
  REQUIRE(ws.connect(s.port(), "?key=wk_web_test_key") == 101);
  REQUIRE(ws.send(event("plus-1", "page_view", R"({"phone":"+44 20 7946 0000","email":"jane+news@example.com"})")));
  const auto profile_id = text(read_reply(ws, "plus-1"), "profile_id");
  REQUIRE(profile_id.rfind("p-", 0) == 0);
  // Clients paste phone numbers and plus-addresses into the URL as they are.
  CHECK(pid_of(s, "phone:+442079460000") == profile_id);
  CHECK(pid_of(s, "email:jane+news@example.com") == profile_id);
  // Percent-encoding still decodes, %20 being the way to send a space.
  CHECK(pid_of(s, "phone:%2B442079460000") == profile_id);
  CHECK(pid_of(s, "phone:%2B44%2020%207946%200000") == profile_id);
  CHECK(pid_of(s, "email:jane%2Bnews@example.com") == profile_id);
  CHECK(pid_of(s, "email:%20jane+news@example.com%20") == profile_id);
  int status = 0;
  lookup(s, "email:jane%20news@example.com", &status);
  CHECK(status == 404);
}

TEST_CASE("a blocked placeholder value links no one and is counted", "[identity][integration]") {
  configured_server s;
  ws_client ws;
  REQUIRE(ws.connect(s.port(), "?key=wk_web_test_key") == 101);
  REQUIRE(ws.send(event("b-1", "page_view", R"({"anonymous_id":"a-1","user_id":"null"})")));
  std::string one = text(read_reply(ws, "b-1"), "profile_id");
  REQUIRE(ws.send(event("b-2", "page_view", R"({"anonymous_id":"a-2","user_id":"null"})")));
  std::string two = text(read_reply(ws, "b-2"), "profile_id");
  CHECK(one != two);
  int status = 0;
  lookup(s, "user_id:null", &status);
  CHECK(status == 404);
  CHECK(metric(s, "nudge_identity_blocked_total") == 2);
  // Only placeholders: an invalid message that stores nothing.
  REQUIRE(ws.send(event("b-3", "page_view", R"({"user_id":"undefined"})")));
  auto err = read_reply(ws, "b-3");
  CHECK(std::string(err["code"].GetString()) == "invalid_message");
}

TEST_CASE("a merge survives SIGKILL and a restart", "[identity][integration][crash]") {
  configured_server s;
  std::string survivor, merged;
  {
    ws_client mobile, desktop;
    std::tie(survivor, merged) = phone_and_laptop(s, mobile, desktop);
    // The push to the laptop is released after its own commit: once it is here,
    // every decision the cap counts is on disk.
    bool pushed = false;
    for (int i = 0; i < 10 && !pushed; ++i) {
      auto frame = desktop.read();
      REQUIRE(frame);
      auto p = parse(*frame);
      pushed = p.IsObject() && p.HasMember("id") && p["id"].IsNull();
    }
    REQUIRE(pushed);
  }
  REQUIRE(s.srv->stop(SIGKILL) == 128 + SIGKILL);
  s.start();
  for (const auto* ident : {"device_id:ios-5521", "anonymous_id:a-desk", "user_id:u-jane"})
    CHECK(pid_of(s, ident) == survivor);
  auto p = profile(s, survivor);
  CHECK(lists(p["merged_from"], merged));
  CHECK(p["stats"]["events"].GetUint64() == 4);
  CHECK(text(profile(s, merged), "profile_id") == survivor);
  // After the restart the laptop's identity still reaches the merged profile and its cart.
  ws_client desktop;
  REQUIRE(desktop.connect(s.port(), "?key=wk_web_test_key") == 101);
  REQUIRE(desktop.send(event("d-9", "page_view", R"({"anonymous_id":"a-desk"})", R"(,"explain":true)")));
  auto d9 = read_reply(desktop, "d-9");
  CHECK(text(d9, "profile_id") == survivor);
  // The cart segment holds (the condition passes) and the united cap still counts.
  REQUIRE(d9.HasMember("explain"));
  CHECK(text(d9["explain"]["cart_recovery"], "reason") == "capped");
}

TEST_CASE("a refused feedback that names two profiles merges nothing and an accepted one merges them",
          "[identity][integration]") {
  configured_server s;
  ws_client web;
  REQUIRE(web.connect(s.port(), "?key=wk_web_test_key") == 101);
  REQUIRE(web.send(event("w-1", "page_view", R"({"anonymous_id":"a-fb"})")));
  const std::string first = text(read_reply(web, "w-1"), "profile_id");
  REQUIRE(web.send(event("w-2", "page_view", R"({"device_id":"dev-fb"})")));
  auto w2 = read_reply(web, "w-2");
  const std::string second = text(w2, "profile_id");
  const std::string second_decision = text(w2, "decision_id");
  REQUIRE(first != second);
  REQUIRE(first_action(w2) != "");  // a decision with an action is kept in the profile's log
  const std::string both = R"({"anonymous_id":"a-fb","device_id":"dev-fb"})";
  const auto feedback = [&](const std::string& id, const std::string& action, const std::string& decision_id) {
    return R"({"type":"feedback","id":")" + id + R"(","identities":)" + both + R"(,"action":")" + action +
           R"(","outcome":"shown")" + (decision_id.empty() ? "" : R"(,"decision_id":")" + decision_id + R"(")") + "}";
  };
  const auto separate = [&] {
    CHECK(text(profile(s, second), "profile_id") == second);
    CHECK(text(profile(s, first), "profile_id") == first);
    CHECK(pid_of(s, "device_id:dev-fb") == second);
    CHECK(pid_of(s, "anonymous_id:a-fb") == first);
  };
  // A decision neither profile received, then an action the policy does not have.
  REQUIRE(web.send(feedback("f-1", "house_banner", "d-01XXXXXXXXXXXXXXXXXXXXXXXX")));
  auto f1 = read_reply(web, "f-1");
  CHECK(text(f1, "code") == "invalid_message");
  CHECK(text(f1, "message") == "decision_id is not a decision of this profile");
  separate();
  REQUIRE(web.send(feedback("f-2", "no_such_action", "")));
  CHECK(text(read_reply(web, "f-2"), "code") == "invalid_message");
  separate();
  // The next messages of each identity still go to their own profile.
  REQUIRE(web.send(event("w-3", "page_view", R"({"device_id":"dev-fb"})")));
  CHECK(text(read_reply(web, "w-3"), "profile_id") == second);
  // A decision of the profile to be merged away: accepted, and the two merge.
  REQUIRE(web.send(feedback("f-3", first_action(w2), second_decision)));
  auto f3 = read_reply(web, "f-3");
  CHECK(text(f3, "type") == "ack");
  CHECK(text(f3, "profile_id") == first);
  CHECK(pid_of(s, "device_id:dev-fb") == first);
  CHECK(lists(profile(s, first)["merged_from"], second));
}

TEST_CASE("many connections racing with overlapping identities: one profile per identity, no event lost", "[identity][integration][concurrency]") {
  configured_server s;
  constexpr int connections = 8;
  constexpr int per_connection = 60;
  std::vector<std::unique_ptr<ws_client>> clients;
  for (int c = 0; c < connections; ++c) {
    clients.push_back(std::make_unique<ws_client>());
    REQUIRE(clients.back()->connect(s.port(), "?key=wk_web_test_key") == 101);
  }
  // Every message pairs an anonymous id of its connection with an email shared
  // across connections, so that resolutions race and profiles merge.
  std::set<std::string> identities;
  for (int i = 0; i < per_connection; ++i)
    for (int c = 0; c < connections; ++c) {
      auto anon = "anon-" + std::to_string(c) + "-" + std::to_string(i % 6);
      auto email = "shared" + std::to_string((i * 7 + c) % 11) + "@example.com";
      identities.insert("anonymous_id:" + anon);
      identities.insert("email:" + email);
      auto id = "r-" + std::to_string(c) + "-" + std::to_string(i);
      REQUIRE(clients[c]->send(event(id, "page_view", R"({"anonymous_id":")" + anon + R"(","email":")" + email + R"("})")));
    }
  // Replies on one connection may come in any order: collect them by id.
  std::uint64_t accepted = 0;
  for (int c = 0; c < connections; ++c) {
    std::set<std::string> answered;
    for (int frames = 0; frames < 4 * per_connection && static_cast<int>(answered.size()) < per_connection; ++frames) {
      auto frame = clients[c]->read();
      REQUIRE(frame);
      auto reply = parse(*frame);
      if (!reply.IsObject() || !reply.HasMember("id") || !reply["id"].IsString())
        continue;  // a push
      if (!answered.insert(reply["id"].GetString()).second)
        continue;
      if (text(reply, "type") == "decision")
        ++accepted;
      else
        FAIL_CHECK(text(reply, "code") + ": " + text(reply, "message"));
    }
  }
  CHECK(accepted == connections * per_connection);

  // Each identity is held by exactly one profile, which lists it.
  std::map<std::string, std::string> owner;
  std::map<std::string, std::uint64_t> events;
  for (const auto& ident : identities) {
    int status = 0;
    auto doc = lookup(s, ident, &status);
    REQUIRE(status == 200);
    std::string pid = text(doc, "profile_id");
    bool listed = false;
    for (const auto& i : doc["identities"].GetArray())
      listed = listed || std::string(i["type"].GetString()) + ":" + i["value"].GetString() == ident;
    CHECK(listed);
    owner[ident] = pid;
    events[pid] = doc["stats"]["events"].GetUint64();
  }
  std::map<std::string, std::string> holder;  // identity → profile that lists it
  std::uint64_t total = 0;
  for (const auto& [pid, n] : events) {
    total += n;
    auto p = profile(s, pid);
    for (const auto& i : p["identities"].GetArray()) {
      std::string key = std::string(i["type"].GetString()) + ":" + i["value"].GetString();
      CHECK(holder.emplace(key, pid).second);  // no identity in two profiles
    }
  }
  CHECK(total == accepted);

  // /v1/stats reports the rates of the last minute (here: since start) and the merges.
  auto stats = http_call(s.port(), "GET", "/v1/stats", "", {{"Authorization", s.admin()}});
  REQUIRE(stats.status == 200);
  auto st = parse(stats.body);
  CHECK(st["messages_per_second"].GetDouble() > 0);
  CHECK(st["decisions_per_second"].GetDouble() > 0);
  CHECK(st["identity"]["merges"].GetUint64() == metric(s, "nudge_identity_merges_total"));
}
