// Consent, data-subject rights and retention against the real binary (issue #5,
// API.md sections 4 and 5): consent enforcement on the very next message, export and
// audit, erasure checked everywhere (also after SIGKILL, restart and in a backup),
// suppression, idle anonymous profiles, history age, admin auth on every endpoint.
#include "tests/integration/harness.hpp"

#include "storage/expiry_table.hpp"
#include "tests/storage/test_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <thread>

using namespace nudge::test;

namespace {

std::string consent(const std::string& id, const std::string& ids_json, const std::string& purposes_json,
                    const std::string& extra = "") {
  return R"({"type":"consent","id":")" + id + R"(","identities":)" + ids_json + R"(,"purposes":)" + purposes_json +
         extra + "}";
}

std::string event(const std::string& id, const std::string& ids_json, const std::string& name,
                  const std::string& extra = "") {
  return R"({"type":"event","id":")" + id + R"(","name":")" + name + R"(","identities":)" + ids_json + extra + "}";
}

std::string anon(const std::string& a) {
  return R"({"anonymous_id":")" + a + R"("})";
}

std::string first_action(const rapidjson::Value& d) {
  if (!d.IsObject() || !d.HasMember("actions") || d["actions"].Size() == 0)
    return "";
  return d["actions"][0]["action"].GetString();
}

std::set<std::string> actions_of(const rapidjson::Value& d) {
  std::set<std::string> out;
  if (d.IsObject() && d.HasMember("actions"))
    for (const auto& a : d["actions"].GetArray())
      out.insert(a["action"].GetString());
  return out;
}

std::string iso_ago(std::chrono::minutes m) {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() - m);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

int status_by_identity(const server_process& srv, const std::string& type_value) {
  return admin_call(srv, "GET", "/v1/profiles?identity=" + type_value).status;
}

/// Polls `pred` every 100 ms for at most `limit`; true once it holds.
template <class Pred>
bool eventually(Pred pred, std::chrono::seconds limit = std::chrono::seconds(20)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pred();
}

const std::string personal_actions[] = {"service_recovery", "cart_recovery", "promo_sku42"};

/// Two stream sources: `web` and `mail`, whose channel is email.
const char* const web_and_mail_sources = R"([server]
data_dir = "unused"

[[sources]]
id = "web"
kind = "stream"
channel = "web"

[[sources]]
id = "mail"
kind = "stream"
channel = "email"
)";

/// Connects `web` with the server's write key and `mail` with the mail source's key
/// (a server of web_and_mail_sources over the data dir `data`).
void connect_web_and_mail(const server_process& srv, const std::filesystem::path& data, ws_client& web,
                          ws_client& mail) {
  const auto mail_key = file_text(data / "mail.key");
  REQUIRE(!mail_key.empty());
  REQUIRE(web.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(mail.connect(srv.port(), "?key=" + mail_key) == 101);
}

}  // namespace

TEST_CASE("without personalization only context actions and the fallback, and consent changes hold on the very next message",
          "[privacy][integration][consent]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  const auto ids = anon("a-pers");
  REQUIRE(ws.send(consent("c-1", ids, R"({"analytics":"granted"})")));
  read_reply(ws, "c-1");
  REQUIRE(ws.send(event("e-1", ids, "cart_add", R"(,"ts":")" + iso_ago(std::chrono::minutes(120)) + "\"")));
  read_reply(ws, "e-1");
  REQUIRE(ws.send(event("e-2", ids, "product_view", R"(,"properties":{"category":"shoes"},"explain":true)")));
  auto before = read_reply(ws, "e-2");
  for (const auto& a : personal_actions) {
    INFO(a);
    CHECK(std::string(before["explain"][a.c_str()]["reason"].GetString()) == "consent_missing");
    CHECK(std::string(before["explain"][a.c_str()]["purpose"].GetString()) == "personalization");
  }
  auto chosen = first_action(before);
  CHECK((chosen == "welcome" || chosen == "house_banner"));

  // A grant that has expired reads as the default (denied); one that has not, as granted.
  REQUIRE(ws.send(consent("c-x", ids, R"({"personalization":{"state":"granted","expires":")" +
                                           iso_ago(std::chrono::minutes(1)) + R"("}})")));
  read_reply(ws, "c-x");
  REQUIRE(ws.send(event("e-x", ids, "page_view", R"(,"explain":true)")));
  auto expired = read_reply(ws, "e-x");
  CHECK(std::string(expired["explain"]["cart_recovery"]["reason"].GetString()) == "consent_missing");
  auto state = parse(admin_call(srv, "GET", "/v1/profiles/" + std::string(expired["profile_id"].GetString())).body);
  CHECK(std::string(state["consent"]["personalization"]["state"].GetString()) == "denied");
  CHECK(state["consent"]["personalization"].HasMember("expires"));

  REQUIRE(ws.send(consent("c-2", ids, R"({"personalization":{"state":"granted","expires":")" +
                                          iso_ago(std::chrono::minutes(-600)) + R"("}})")));
  read_reply(ws, "c-2");
  REQUIRE(ws.send(event("e-3", ids, "page_view")));
  CHECK(first_action(read_reply(ws, "e-3")) == "cart_recovery");

  REQUIRE(ws.send(consent("c-3", ids, R"({"personalization":"denied"})")));
  read_reply(ws, "c-3");
  REQUIRE(ws.send(event("e-4", ids, "page_view", R"(,"explain":true)")));
  auto after = read_reply(ws, "e-4");
  CHECK(actions_of(after).count("cart_recovery") == 0);
  CHECK(std::string(after["explain"]["cart_recovery"]["reason"].GetString()) == "consent_missing");

  // Withdrawing analytics empties history and stats.
  std::string profile = after["profile_id"].GetString();
  REQUIRE(ws.send(consent("c-4", ids, R"({"analytics":"denied"})")));
  read_reply(ws, "c-4");
  auto p = parse(admin_call(srv, "GET", "/v1/profiles/" + profile).body);
  CHECK(p["stats"]["events"].GetUint64() == 0);
  CHECK(p["recent_events"].Size() == 0);
  CHECK(p["stats"]["by_name"].MemberCount() == 0);
}

TEST_CASE("an email action never goes out without marketing_email", "[privacy][integration][consent]") {
  temp_dir dir;
  auto cfg = write_config(dir.path, web_and_mail_sources);
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  ws_client web, mail;
  connect_web_and_mail(srv, dir.path / "data", web, mail);
  const auto ids = anon("a-mail");
  REQUIRE(web.send(consent("c-1", ids, R"({"analytics":"granted","personalization":"granted"})")));
  read_reply(web, "c-1");
  REQUIRE(web.send(event("e-1", ids, "cart_add")));
  read_reply(web, "e-1");

  for (int i = 0; i < 3; ++i) {
    auto id = "m-" + std::to_string(i);
    REQUIRE(mail.send(event(id, ids, "cart_abandoned", R"(,"explain":true)")));
    auto d = read_reply(mail, id);
    CHECK(actions_of(d).count("cart_email") == 0);
    CHECK(std::string(d["explain"]["cart_email"]["reason"].GetString()) == "consent_missing");
    CHECK(std::string(d["explain"]["cart_email"]["purpose"].GetString()) == "marketing_email");
  }
  REQUIRE(web.send(consent("c-2", ids, R"({"marketing_email":"granted"})")));
  read_reply(web, "c-2");
  REQUIRE(mail.send(event("m-3", ids, "cart_abandoned")));
  auto granted = read_reply(mail, "m-3");
  CHECK(first_action(granted) == "cart_email");
  std::string profile = granted["profile_id"].GetString();

  REQUIRE(web.send(consent("c-3", ids, R"({"marketing_email":"denied"})")));
  read_reply(web, "c-3");
  REQUIRE(mail.send(event("m-4", ids, "cart_abandoned", R"(,"explain":true)")));
  auto denied = read_reply(mail, "m-4");
  CHECK(actions_of(denied).count("cart_email") == 0);
  CHECK(std::string(denied["explain"]["cart_email"]["reason"].GetString()) == "consent_missing");

  // The audit trail: every consent change with its source, the email decision with the
  // policy version and the purposes it relied on.
  auto audit = parse(admin_call(srv, "GET", "/v1/profiles/" + profile + "/audit").body);
  REQUIRE(audit.IsObject());
  int consents = 0;
  bool email_decision = false;
  for (const auto& r : audit["records"].GetArray()) {
    std::string kind = r["kind"].GetString();
    if (kind == "consent")
      ++consents;
    if (kind == "decision" && r["detail"]["actions"].Size() == 1 &&
        std::string(r["detail"]["actions"][0].GetString()) == "cart_email") {
      email_decision = true;
      CHECK(std::string(r["detail"]["policy_version"].GetString()) == "retail-example-1");
      std::set<std::string> relied;
      for (const auto& x : r["detail"]["relied_on"].GetArray())
        relied.insert(x.GetString());
      CHECK(relied.count("marketing_email") == 1);
      CHECK(relied.count("personalization") == 1);
    }
  }
  CHECK(consents == 4);  // analytics, personalization, marketing_email granted, then denied
  CHECK(email_decision);
}

TEST_CASE("caps and cooldowns and the contact policy hold without personalization or analytics and the event being "
          "decided counts",
          "[privacy][integration][consent]") {
  temp_dir dir;
  auto cfg = write_config(dir.path, web_and_mail_sources);
  // One placement each, so that arbitration takes every eligible action.
  const auto policy = dir.path / "limits.json";
  std::ofstream(policy) << R"({"version": "limits-1",
    "arbitration": {"rank_by": "priority", "max_actions": 5},
    "contact_policy": {"channels": ["email"], "max": 2, "per": "7d"},
    "actions": [
      {"id": "capped_once", "channels": ["web"], "placements": ["top"], "cap": [{"max": 1, "per": "1h"}]},
      {"id": "cooled", "channels": ["web"], "placements": ["side"], "cooldown": {"after_shown": "1h"}},
      {"id": "first_view", "channels": ["web"], "placements": ["mid"], "when": {"event": "view", "eq": 1}},
      {"id": "mail", "channels": ["email"]}]})";
  server_process srv(dir.path / "data", {"--config", cfg.string(), "--policy", policy.string()});
  ws_client web, mail;
  connect_web_and_mail(srv, dir.path / "data", web, mail);

  // No purpose granted (the defaults are opt-in): the first view is decided on that
  // view alone, which counts; the second finds the cap full and the cooldown running.
  const auto ids = anon("a-limits");
  REQUIRE(web.send(event("v-1", ids, "view")));
  auto first = read_reply(web, "v-1");
  CHECK(actions_of(first) == std::set<std::string>{"capped_once", "cooled", "first_view"});
  REQUIRE(web.send(event("v-2", ids, "view", R"(,"explain":true)")));
  auto second = read_reply(web, "v-2");
  CHECK(actions_of(second) == std::set<std::string>{"first_view"});  // history is not kept: one view again
  CHECK(std::string(second["explain"]["capped_once"]["reason"].GetString()) == "capped");
  CHECK(std::string(second["explain"]["cooled"]["reason"].GetString()) == "cooldown");

  // marketing_email alone (no personalization): the contact policy still allows two.
  const auto mailer = anon("a-mailer");
  REQUIRE(web.send(consent("c-m", mailer, R"({"marketing_email":"granted"})")));
  read_reply(web, "c-m");
  int mails = 0;
  for (int i = 0; i < 4; ++i) {
    const auto id = "m-" + std::to_string(i);
    REQUIRE(mail.send(event(id, mailer, "cart_abandoned", R"(,"explain":true)")));
    auto d = read_reply(mail, id);
    mails += static_cast<int>(actions_of(d).count("mail"));
    if (i >= 2)
      CHECK(std::string(d["explain"]["mail"]["reason"].GetString()) == "contact_policy");
  }
  CHECK(mails == 2);
}

TEST_CASE("export holds everything stored about the person and the audit keeps every consent change",
          "[privacy][integration][export]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  const auto ids = R"({"anonymous_id":"a-exp","email":"Exp@Example.com"})";
  REQUIRE(ws.send(consent("c-1", ids, R"({"analytics":"granted","personalization":"granted"})", R"(,"source":"cmp-banner")")));
  std::string profile = read_reply(ws, "c-1")["profile_id"].GetString();
  REQUIRE(ws.send(consent("c-2", ids, R"({"personalization":"denied"})", R"(,"source":"settings")")));
  read_reply(ws, "c-2");
  REQUIRE(ws.send(consent("c-3", ids, R"({"personalization":"granted"})", R"(,"source":"settings")")));
  read_reply(ws, "c-3");
  REQUIRE(ws.send(event("e-1", ids, "purchase", R"(,"properties":{"price":12.5},"traits":{"tier":"gold"})")));
  auto d = read_reply(ws, "e-1");
  std::string decision_id = d["decision_id"].GetString();

  auto res = admin_call(srv, "GET", "/v1/profiles/" + profile + "/export");
  REQUIRE(res.status == 200);
  auto ex = parse(res.body);
  REQUIRE(ex.IsObject());
  CHECK(std::string(ex["profile"]["profile_id"].GetString()) == profile);
  CHECK(std::string(ex["profile"]["traits"]["tier"].GetString()) == "gold");
  std::set<std::string> identities;
  for (const auto& i : ex["identities"].GetArray())
    identities.insert(std::string(i["type"].GetString()) + ":" + i["value"].GetString());
  CHECK(identities == std::set<std::string>{"anonymous_id:a-exp", "email:exp@example.com"});
  REQUIRE(ex["events"].Size() == 1);
  CHECK(std::string(ex["events"][0]["name"].GetString()) == "purchase");
  REQUIRE(ex["decisions"].Size() == 1);
  CHECK(std::string(ex["decisions"][0]["decision_id"].GetString()) == decision_id);
  REQUIRE(ex["consent_history"].Size() == 4);
  const auto& h = ex["consent_history"];
  CHECK(std::string(h[1]["detail"]["purpose"].GetString()) == "personalization");
  CHECK(std::string(h[2]["detail"]["state"].GetString()) == "denied");
  CHECK(std::string(h[2]["detail"]["source"].GetString()) == "settings");
  CHECK(std::string(h[3]["detail"]["state"].GetString()) == "granted");
  CHECK(ex["audit"].Size() == 5);  // four consent records and the decision

  CHECK(admin_call(srv, "GET", "/v1/profiles/p-unknown/export").status == 404);
  CHECK(admin_call(srv, "GET", "/v1/profiles/p-unknown/audit").status == 404);
  CHECK(admin_call(srv, "DELETE", "/v1/profiles/p-unknown").status == 404);
  CHECK(admin_call(srv, "POST", "/v1/profiles/" + profile + "/export").status == 405);
  CHECK(admin_call(srv, "DELETE", "/v1/profiles/" + profile + "?suppress=maybe").status == 400);
  CHECK(admin_call(srv, "GET", "/v1/profiles/" + profile).status == 200);  // the bad request changed nothing

  // The consent history survives a restart (it is stored, not only in memory).
  srv.stop(SIGKILL);
  server_process again(dir.path);
  auto after = parse(admin_call(again, "GET", "/v1/profiles/" + profile + "/export").body);
  REQUIRE(after.IsObject());
  CHECK(after["consent_history"].Size() == 4);
  CHECK(after["decisions"].Size() == 1);
}

TEST_CASE("admin endpoints refuse a missing or wrong token and a write key, and say nothing about profiles",
          "[privacy][integration][auth]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(consent("c-1", anon("a-secret-person"), R"({"analytics":"granted"})")));
  std::string profile = read_reply(ws, "c-1")["profile_id"].GetString();
  const std::vector<std::pair<std::string, std::string>> endpoints = {
    {"GET", "/v1/profiles/" + profile},
    {"GET", "/v1/profiles?identity=anonymous_id:a-secret-person"},
    {"GET", "/v1/profiles/" + profile + "/export"},
    {"GET", "/v1/profiles/" + profile + "/audit"},
    {"DELETE", "/v1/profiles/" + profile},
    {"DELETE", "/v1/profiles/" + profile + "?suppress=true"},
    {"PUT", "/v1/profiles/" + profile + "/consent"},
    {"GET", "/v1/stats"},
    {"GET", "/v1/policy"},
  };
  for (const auto& [method, target] : endpoints)
    for (const std::string& token : {std::string(""), std::string("adm_wrong"), srv.write_key()}) {
      INFO(method << ' ' << target << " with '" << token << "'");
      std::vector<std::pair<std::string, std::string>> headers;
      if (!token.empty())
        headers.emplace_back("Authorization", "Bearer " + token);
      auto res = http_call(srv.port(), method, target, R"({"purposes":{"analytics":"denied"}})", headers);
      CHECK(res.status == 401);
      CHECK(res.body.find(profile) == std::string::npos);
      CHECK(res.body.find("a-secret-person") == std::string::npos);
    }
  // Nothing was erased or changed by the refused requests.
  auto p = parse(admin_call(srv, "GET", "/v1/profiles/" + profile).body);
  REQUIRE(p.IsObject());
  CHECK(std::string(p["consent"]["analytics"]["state"].GetString()) == "granted");
  // /metrics is open and holds no personal data.
  auto metrics = http_call(srv.port(), "GET", "/metrics").body;
  CHECK(metrics.find("nudge_decision_latency_seconds_bucket{le=\"+Inf\"}") != std::string::npos);
  CHECK(metrics.find(profile) == std::string::npos);
  CHECK(metrics.find("a-secret-person") == std::string::npos);
}

TEST_CASE("an erased profile is gone everywhere, also after SIGKILL, restart and in a later backup",
          "[privacy][integration][erasure]") {
  temp_dir dir;
  const std::string person = "a-erase-me-7731";
  const std::string email = "erase.me.7731@example.com";
  const auto ids = R"({"anonymous_id":")" + person + R"(","email":")" + email + R"("})";
  std::string profile;
  std::string bystander;
  {
    server_process srv(dir.path);
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    REQUIRE(ws.send(consent("c-1", ids, R"({"analytics":"granted","personalization":"granted"})")));
    profile = read_reply(ws, "c-1")["profile_id"].GetString();
    for (int i = 0; i < 80; ++i) {  // past the snapshot interval: snapshot and journal both hold it
      auto id = "e-" + std::to_string(i);
      REQUIRE(ws.send(event(id, ids, "page_view", R"(,"properties":{"url":"/secret-page"})")));
      REQUIRE(read_reply(ws, id).IsObject());
    }
    REQUIRE(ws.send(consent("c-b", anon("a-bystander"), R"({"analytics":"granted"})")));
    bystander = read_reply(ws, "c-b")["profile_id"].GetString();

    auto del = admin_call(srv, "DELETE", "/v1/profiles/" + profile);
    REQUIRE(del.status == 200);
    auto counts = parse(del.body);
    CHECK(counts["erased"].GetBool());
    CHECK(counts["removed"]["profiles"].GetUint64() == 1);
    CHECK(counts["removed"]["identities"].GetUint64() == 2);
    CHECK(counts["removed"]["journal"].GetUint64() >= 1);
    CHECK(counts["removed"]["dedupe"].GetUint64() >= 81);
    CHECK(counts["removed"]["audit"].GetUint64() == 2);  // its two consent records
    CHECK(counts["erasure_id"].IsString());

    // At once: by id, by either identity, in export and audit; the same connection's
    // next message (its cached resolution) starts a new, empty profile.
    CHECK(admin_call(srv, "GET", "/v1/profiles/" + profile).status == 404);
    CHECK(admin_call(srv, "GET", "/v1/profiles/" + profile + "/export").status == 404);
    CHECK(admin_call(srv, "GET", "/v1/profiles/" + profile + "/audit").status == 404);
    CHECK(status_by_identity(srv, "anonymous_id:" + person) == 404);
    CHECK(status_by_identity(srv, "email:" + email) == 404);
    CHECK(admin_call(srv, "DELETE", "/v1/profiles/" + profile).status == 404);
    CHECK(admin_call(srv, "GET", "/v1/profiles/" + bystander).status == 200);
    srv.stop(SIGKILL);
  }
  server_process srv(dir.path);
  CHECK(admin_call(srv, "GET", "/v1/profiles/" + profile).status == 404);
  CHECK(admin_call(srv, "GET", "/v1/profiles/" + profile + "/export").status == 404);
  CHECK(status_by_identity(srv, "anonymous_id:" + person) == 404);
  CHECK(status_by_identity(srv, "email:" + email) == 404);
  CHECK(admin_call(srv, "GET", "/v1/profiles/" + bystander).status == 200);

  // A backup made later holds nothing of the person, not even in its raw bytes.
  auto backup_dir = dir.path / "backup";
  std::string out;
  REQUIRE(run_nudge({"backup", backup_dir.string(), "--data", dir.path.string()}, out) == 0);
  auto raw = file_bytes(backup_dir / "data.mdb");
  REQUIRE(!raw.empty());
  CHECK(raw.find(person) == std::string::npos);
  CHECK(raw.find(email) == std::string::npos);
  CHECK(raw.find(profile) == std::string::npos);
  CHECK(raw.find("/secret-page") == std::string::npos);
  CHECK(raw.find(bystander) != std::string::npos);

  // An event with an old identity starts a new, empty profile.
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(event("e-new", anon(person), "page_view")));
  auto fresh = read_reply(ws, "e-new");
  REQUIRE(fresh.IsObject());
  std::string fresh_id = fresh["profile_id"].GetString();
  CHECK(fresh_id != profile);
  auto p = parse(admin_call(srv, "GET", "/v1/profiles/" + fresh_id).body);
  CHECK(p["identities"].Size() == 1);
  CHECK(p["stats"]["events"].GetUint64() == 0);  // no analytics consent: nothing retained
  CHECK(std::string(p["consent"]["personalization"]["state"].GetString()) == "denied");
}

TEST_CASE("an erasure on a live connection: its next message starts a new profile, not the erased one",
          "[privacy][integration][erasure]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  const auto ids = anon("a-live");
  REQUIRE(ws.send(consent("c-1", ids, R"({"analytics":"granted"})")));
  std::string profile = read_reply(ws, "c-1")["profile_id"].GetString();
  REQUIRE(ws.send(event("e-1", ids, "page_view")));
  read_reply(ws, "e-1");
  REQUIRE(admin_call(srv, "DELETE", "/v1/profiles/" + profile).status == 200);
  REQUIRE(ws.send(event("e-2", ids, "page_view")));
  auto d = read_reply(ws, "e-2");
  REQUIRE(d.IsObject());
  std::string now_id = d["profile_id"].GetString();
  CHECK(now_id != profile);
  auto p = parse(admin_call(srv, "GET", "/v1/profiles?identity=anonymous_id:a-live").body);
  CHECK(std::string(p["profile_id"].GetString()) == now_id);
  CHECK(std::string(p["consent"]["analytics"]["state"].GetString()) == "denied");
}

/// The value of the gauge `name` in /metrics, or -1.
long long gauge(const server_process& srv, const std::string& name) {
  auto value = metric(srv.port(), name);
  return value ? static_cast<long long>(*value) : -1;
}

TEST_CASE("erased ids are tombstoned for idle_passivate after the commit, then forgotten, and stay erased",
          "[privacy][integration][erasure][memory]") {
  temp_dir dir;
  auto cfg = write_config(dir.path, "[profiles]\nidle_passivate = \"3s\"\n");
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  std::vector<std::string> erased;
  for (int i = 0; i < 10; ++i) {
    auto a = "a-tomb-" + std::to_string(i);
    REQUIRE(ws.send(consent("c-" + a, anon(a), R"({"analytics":"granted"})")));
    erased.push_back(read_reply(ws, "c-" + a)["profile_id"].GetString());
    REQUIRE(admin_call(srv, "DELETE", "/v1/profiles/" + erased.back()).status == 200);
  }
  // Held while a message resolved before the erasure could still be under way...
  CHECK(gauge(srv, "nudge_profiles_tombstones") >= 1);
  // ...then dropped (not kept for the life of the process: retention erases many).
  CHECK(eventually([&] { return gauge(srv, "nudge_profiles_tombstones") == 0; }));
  // Without its tombstone an erased id still finds nothing and creates nothing.
  for (const auto& id : erased) {
    CHECK(admin_call(srv, "GET", "/v1/profiles/" + id).status == 404);
    CHECK(admin_call(srv, "GET", "/v1/profiles/" + id + "/export").status == 404);
  }
  CHECK(status_by_identity(srv, "anonymous_id:a-tomb-0") == 404);
  REQUIRE(ws.send(event("e-after", anon("a-tomb-0"), "page_view")));
  auto d = read_reply(ws, "e-after");
  REQUIRE(d.IsObject());
  CHECK(std::find(erased.begin(), erased.end(), std::string(d["profile_id"].GetString())) == erased.end());
}

TEST_CASE("an erasure with suppress=true answers later messages as suppressed and stores nothing",
          "[privacy][integration][erasure]") {
  temp_dir dir;
  const std::string person = "a-suppress-me-5521";
  std::string profile;
  {
    server_process srv(dir.path);
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    REQUIRE(ws.send(consent("c-1", anon(person), R"({"analytics":"granted"})")));
    profile = read_reply(ws, "c-1")["profile_id"].GetString();
    auto del = admin_call(srv, "DELETE", "/v1/profiles/" + profile + "?suppress=true");
    REQUIRE(del.status == 200);
    CHECK(parse(del.body)["suppressed"].GetBool());

    REQUIRE(ws.send(event("e-1", anon(person), "page_view")));
    auto d = read_reply(ws, "e-1");
    CHECK(d["suppressed"].GetBool());
    CHECK(d["actions"].Size() == 0);
    CHECK(!d.HasMember("profile_id"));
    REQUIRE(ws.send(consent("c-2", anon(person), R"({"analytics":"granted"})")));
    auto ack = read_reply(ws, "c-2");
    CHECK(std::string(ack["type"].GetString()) == "ack");
    CHECK(ack["suppressed"].GetBool());
    // With another identity beside it: still suppressed, and the other is not stored.
    REQUIRE(ws.send(event("e-2", R"({"anonymous_id":")" + person + R"(","email":"other.5521@example.com"})", "page_view")));
    CHECK(read_reply(ws, "e-2")["suppressed"].GetBool());
    CHECK(status_by_identity(srv, "anonymous_id:" + person) == 404);
    CHECK(status_by_identity(srv, "email:other.5521@example.com") == 404);
    // Over HTTP as well.
    auto http = http_call(srv.port(), "POST", "/v1/events", event("e-3", anon(person), "page_view"),
                          {{"Authorization", "Bearer " + srv.write_key()}, {"Content-Type", "application/json"}});
    CHECK(parse(http.body)["suppressed"].GetBool());
    srv.stop(SIGKILL);
  }
  // The key is a 0600 secret; the list holds keyed hashes, never the identity.
  auto perms = std::filesystem::status(dir.path / "suppression.key").permissions();
  CHECK((perms & std::filesystem::perms::group_all) == std::filesystem::perms::none);
  CHECK((perms & std::filesystem::perms::others_all) == std::filesystem::perms::none);
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(event("e-4", anon(person), "page_view")));
  CHECK(read_reply(ws, "e-4")["suppressed"].GetBool());
  REQUIRE(ws.send(event("e-5", anon("a-not-suppressed"), "page_view")));
  CHECK(read_reply(ws, "e-5")["profile_id"].IsString());
  auto backup_dir = dir.path / "backup";
  std::string out;
  REQUIRE(run_nudge({"backup", backup_dir.string(), "--data", dir.path.string()}, out) == 0);
  CHECK(file_bytes(backup_dir / "data.mdb").find(person) == std::string::npos);
}

TEST_CASE("idle anonymous-only profiles are erased after anonymous_ttl and a known person is kept",
          "[privacy][integration][retention]") {
  temp_dir dir;
  auto cfg = write_config(dir.path, "[profiles]\nanonymous_ttl = \"2s\"\n");
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(consent("c-1", anon("a-idle"), R"({"analytics":"granted"})")));
  read_reply(ws, "c-1");
  REQUIRE(ws.send(consent("c-2", R"({"anonymous_id":"a-known","user_id":"u-known"})", R"({"analytics":"granted"})")));
  read_reply(ws, "c-2");
  REQUIRE(status_by_identity(srv, "anonymous_id:a-idle") == 200);
  CHECK(eventually([&] { return status_by_identity(srv, "anonymous_id:a-idle") == 404; }));
  CHECK(status_by_identity(srv, "anonymous_id:a-known") == 200);
  // The id answers 404 from the moment the erasure starts (the directory's
  // tombstone); the counter moves when its commit is done, a little later.
  CHECK(eventually([&] {
    return http_call(srv.port(), "GET", "/metrics").body.find("nudge_erasures_total 1\n") != std::string::npos;
  }));
}

namespace {

/// The retention due time that data dir `data` indexes for `profile_id` (read with the
/// server stopped).
std::optional<std::chrono::sys_time<std::chrono::milliseconds>> stored_due(const std::filesystem::path& data,
                                                                          const std::string& profile_id) {
  auto o = nudge::storage::test::options_for(data);
  o.preallocate_ahead = 0;  // a reader: the data dir stays as the server left it
  auto env = nudge::storage::test::open_env(o);
  auto tx = env->read();
  std::error_code ec;
  auto due = nudge::storage::expiry_table::due_of(tx, profile_id, ec);
  REQUIRE(!ec);
  return due;
}

}  // namespace

TEST_CASE("an anonymous profile's due time is not moved by later messages nor by an activation, the sweep moves it while the profile is in use, and erases it once idle",
          "[privacy][integration][retention]") {
  // The index may run early, never late: written at the first message (ttl ahead),
  // moved only by the sweep that finds it due while the profile was in use since.
  using namespace std::chrono;
  temp_dir dir;
  auto cfg = write_config(dir.path, "[profiles]\nanonymous_ttl = \"4s\"\nidle_passivate = \"200ms\"\n");
  const auto data = dir.path / "data";
  const auto now = [] { return time_point_cast<milliseconds>(system_clock::now()); };
  std::string profile;
  auto first_done = now();
  {
    server_process srv(data, {"--config", cfg.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    REQUIRE(ws.send(event("r-1", anon("a-ret"), "page_view")));
    profile = read_reply(ws, "r-1")["profile_id"].GetString();
    first_done = now();
    REQUIRE(eventually([&] { return gauge(srv, "nudge_profiles_active") == 0; }));
    REQUIRE(ws.send(event("r-2", anon("a-ret"), "page_view")));  // activates it from storage
    read_reply(ws, "r-2");
    srv.stop(SIGTERM);
  }
  const auto first_due = stored_due(data, profile);
  REQUIRE(first_due);
  CHECK(*first_due <= first_done + seconds(4));  // the first message's: r-2 did not move it
  {
    // Messages every 250 ms until well past that due time: the sweep finds the
    // profile due but in use, keeps it and moves its due time.
    server_process srv(data, {"--config", cfg.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    for (int i = 3; now() < *first_due + milliseconds(1500) && i < 100; ++i) {
      const auto id = "r-" + std::to_string(i);
      REQUIRE(ws.send(event(id, anon("a-ret"), "page_view")));
      read_reply(ws, id);
      std::this_thread::sleep_for(milliseconds(250));
    }
    CHECK(status_by_identity(srv, "anonymous_id:a-ret") == 200);
    srv.stop(SIGTERM);
  }
  const auto moved = stored_due(data, profile);
  REQUIRE(moved);
  CHECK(*moved > *first_due);
  server_process srv(data, {"--config", cfg.string()});
  CHECK(eventually([&] { return status_by_identity(srv, "anonymous_id:a-ret") == 404; }));
}

TEST_CASE("history older than history_max_age is dropped when applied and when loaded",
          "[privacy][integration][retention]") {
  temp_dir dir;
  std::string profile;
  {
    auto cfg = write_config(dir.path, "[profiles]\nhistory_max_age = \"1h\"\n");
    server_process srv(dir.path / "data", {"--config", cfg.string()});
    ws_client ws;
    REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
    const auto ids = anon("a-age");
    REQUIRE(ws.send(consent("c-1", ids, R"({"analytics":"granted"})")));
    profile = read_reply(ws, "c-1")["profile_id"].GetString();
    REQUIRE(ws.send(event("old", ids, "page_view", R"(,"ts":")" + iso_ago(std::chrono::minutes(120)) + "\"")));
    read_reply(ws, "old");
    REQUIRE(ws.send(event("mid", ids, "page_view", R"(,"ts":")" + iso_ago(std::chrono::minutes(30)) + "\"")));
    read_reply(ws, "mid");
    REQUIRE(ws.send(event("new", ids, "page_view")));
    read_reply(ws, "new");
    auto p = parse(admin_call(srv, "GET", "/v1/profiles/" + profile).body);
    REQUIRE(p["recent_events"].Size() == 2);
    CHECK(std::string(p["recent_events"][0]["id"].GetString()) == "mid");
    srv.stop(SIGTERM);
  }
  auto cfg = write_config(dir.path, "[profiles]\nhistory_max_age = \"10m\"\n");
  server_process srv(dir.path / "data", {"--config", cfg.string()});
  auto p = parse(admin_call(srv, "GET", "/v1/profiles/" + profile).body);
  REQUIRE(p["recent_events"].Size() == 1);
  CHECK(std::string(p["recent_events"][0]["id"].GetString()) == "new");
}

TEST_CASE("nudge backup while the service writes: a fresh server on the copy reads the profiles back identical",
          "[privacy][integration][backup]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  std::vector<std::string> settled;
  for (int i = 0; i < 5; ++i) {
    auto a = "a-settled-" + std::to_string(i);
    REQUIRE(ws.send(consent("c-" + a, anon(a), R"({"analytics":"granted","personalization":"granted"})")));
    settled.push_back(read_reply(ws, "c-" + a)["profile_id"].GetString());
    for (int j = 0; j < 10; ++j) {
      auto id = a + "-e" + std::to_string(j);
      REQUIRE(ws.send(event(id, anon(a), "purchase", R"(,"properties":{"price":2.5})")));
      read_reply(ws, id);
    }
  }
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    ws_client w;
    if (w.connect(srv.port(), "?key=" + srv.write_key()) != 101)
      return;
    for (int i = 0; i < 100000 && !stop; ++i) {
      auto id = "busy-" + std::to_string(i);
      if (!w.send(event(id, anon("a-busy-" + std::to_string(i % 50)), "page_view")) || !read_reply(w, id).IsObject())
        return;
      ++written;
    }
  });
  while (written < 50)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto backup_dir = dir.path / "copy";
  std::string out;
  int rc = run_nudge({"backup", backup_dir.string(), "--data", dir.path.string()}, out);
  stop = true;
  writer.join();
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(std::filesystem::exists(backup_dir / "suppression.key"));
  // A second backup into the same directory is refused.
  CHECK(run_nudge({"backup", backup_dir.string(), "--data", dir.path.string()}, out) == 2);

  server_process copy(backup_dir);
  for (const auto& id : settled) {
    INFO(id);
    auto original = admin_call(srv, "GET", "/v1/profiles/" + id);
    auto restored = admin_call(copy, "GET", "/v1/profiles/" + id);
    REQUIRE(original.status == 200);
    CHECK(restored.status == 200);
    CHECK(restored.body == original.body);
  }
  CHECK(admin_call(copy, "GET", "/v1/profiles?identity=anonymous_id:a-busy-0").status == 200);
}

TEST_CASE("a merged-away id answers its survivor, and erasing it erases the merged profile and every trace of both",
          "[privacy][integration][erasure][merge]") {
  temp_dir dir;
  server_process srv(dir.path);
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(consent("c-1", anon("a-merge-3390"), R"({"analytics":"granted"})", R"(,"source":"banner")")));
  std::string older = read_reply(ws, "c-1")["profile_id"].GetString();
  REQUIRE(ws.send(consent("c-2", R"({"user_id":"u-merge-3390"})", R"({"personalization":"granted"})", R"(,"source":"app")")));
  std::string newer = read_reply(ws, "c-2")["profile_id"].GetString();
  REQUIRE(older != newer);
  REQUIRE(ws.send(event("e-1", R"({"user_id":"u-merge-3390","anonymous_id":"a-merge-3390"})", "page_view")));
  auto merged = read_reply(ws, "e-1");
  REQUIRE(std::string(merged["profile_id"].GetString()) == older);

  auto ex = parse(admin_call(srv, "GET", "/v1/profiles/" + newer + "/export").body);
  REQUIRE(ex.IsObject());
  CHECK(std::string(ex["profile_id"].GetString()) == older);
  CHECK(ex["consent_history"].Size() == 2);  // the merged profile's record moved along
  bool merge_audited = false;
  for (const auto& r : ex["audit"].GetArray())
    if (std::string(r["kind"].GetString()) == "merge" &&
        std::string(r["detail"]["merged_from"][0].GetString()) == newer)
      merge_audited = true;
  CHECK(merge_audited);

  auto del = admin_call(srv, "DELETE", "/v1/profiles/" + newer);  // the merged-away id
  REQUIRE(del.status == 200);
  auto counts = parse(del.body);
  CHECK(std::string(counts["profile_id"].GetString()) == older);
  CHECK(counts["removed"]["identities"].GetUint64() == 2);
  CHECK(counts["removed"]["aliases"].GetUint64() == 1);
  for (const auto& id : {older, newer}) {
    CHECK(admin_call(srv, "GET", "/v1/profiles/" + id).status == 404);
    CHECK(admin_call(srv, "GET", "/v1/profiles/" + id + "/audit").status == 404);
  }
  CHECK(status_by_identity(srv, "anonymous_id:a-merge-3390") == 404);
  CHECK(status_by_identity(srv, "user_id:u-merge-3390") == 404);
  auto backup_dir = dir.path / "backup";
  std::string out;
  REQUIRE(run_nudge({"backup", backup_dir.string(), "--data", dir.path.string()}, out) == 0);
  auto raw = file_bytes(backup_dir / "data.mdb");
  for (const std::string& trace : {older, newer, std::string("a-merge-3390"), std::string("u-merge-3390")}) {
    INFO(trace);
    CHECK(raw.find(trace) == std::string::npos);
  }
}
