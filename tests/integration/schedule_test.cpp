// Schedules and destinations against the real binary (POLICY.md Schedules, API.md
// [[destinations]]): a policy whose abandoned-cart schedule fires after 2 s, and a
// local HTTP receiver started by the test as the email destination.
#include <mutex>
#include "tests/integration/harness.hpp"

#include "net/webhook.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>

using namespace nudge::test;

namespace {

constexpr const char* secret = "whsec_esp_test";

std::string policy_text(const std::string& after) {
  return R"({"version": "sched-test-1",
 "actions": [
  {"id": "cart_email", "channels": ["email"], "when": {"current": {"name": "cart_abandoned"}},
   "payload": {"template": "cart_abandoned_email"}},
  {"id": "web_banner", "channels": ["web"], "payload": {"template": "banner"}}],
 "schedules": [{"id": "abandoned_cart", "on": "cart_add", "after": ")" + after + R"(",
                "cancel_on": ["purchase", "cart_clear"], "emit": "cart_abandoned", "channel": "email"}]})";
}

/// A data dir, a config naming `receiver` as the email destination, and the policy.
struct setup {
  temp_dir dir;
  std::filesystem::path data = dir.path / "data";
  std::filesystem::path config = dir.path / "nudge.toml";
  std::filesystem::path policy = dir.path / "policy.json";

  setup(const http_receiver& receiver, const std::string& consent_default = "denied", const std::string& after = "2s",
        int max_attempts = 20) {
    std::ofstream(config) << "[consent]\ndefault = \"" << consent_default << "\"\n\n"
                          << "[[destinations]]\nid = \"esp\"\nurl = \"" << receiver.url() << "\"\nsecret = \"" << secret
                          << "\"\nchannels = [\"email\"]\ntimeout = \"2s\"\nmax_attempts = " << max_attempts << "\n";
    std::ofstream(policy) << policy_text(after);
  }
  std::vector<std::string> args() const { return {"--config", config.string(), "--policy", policy.string()}; }
};

std::string consent_msg(const std::string& id, const std::string& email, const std::string& marketing = "granted") {
  return R"({"type":"consent","id":")" + id + R"(","identities":{"email":")" + email +
         R"("},"purposes":{"analytics":"granted","personalization":"granted","marketing_email":")" + marketing + R"("}})";
}

std::string event_msg(const std::string& id, const std::string& email, const std::string& name,
                      const std::string& extra = "") {
  return R"({"type":"event","id":")" + id + R"(","name":")" + name + R"(","identities":{"email":")" + email + R"("})" +
         extra + "}";
}

/// POSTs `msgs` as one batch; every reply must be a success.
void send_batch(const server_process& srv, const std::vector<std::string>& msgs) {
  std::string body = R"({"batch":[)";
  for (std::size_t i = 0; i < msgs.size(); ++i)
    body += (i ? "," : "") + msgs[i];
  body += "]}";
  auto res = http_call(srv.port(), "POST", "/v1/events", body, {{"Authorization", "Bearer " + srv.write_key()}});
  REQUIRE(res.status == 200);
  auto doc = parse(res.body);
  REQUIRE(doc["results"].Size() == msgs.size());
  for (const auto& r : doc["results"].GetArray())
    REQUIRE(std::string(r["type"].GetString()) != "error");
}

/// The POSTs answered 2xx for `email`.
std::vector<received_request> delivered_to(const std::vector<received_request>& got, const std::string& email) {
  std::vector<received_request> out;
  for (const auto& r : got) {
    auto doc = parse(r.body);
    if (r.answered / 100 == 2 && doc.IsObject() && doc.HasMember("identities") &&
        doc["identities"].HasMember("email") && doc["identities"]["email"].GetString() == email)
      out.push_back(r);
  }
  return out;
}

std::size_t count_for(const std::vector<received_request>& got, const std::string& email) {
  return delivered_to(got, email).size();
}

rapidjson::Document stats(const server_process& srv) {
  return parse(http_call(srv.port(), "GET", "/v1/stats", "", {{"Authorization", "Bearer " + srv.admin_token()}}).body);
}

/// Waits until `pred(stats)` holds (bounded).
template <class Pred>
bool stats_until(const server_process& srv, Pred pred, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    auto s = stats(srv);
    if (s.IsObject() && s.HasMember("outbox") && pred(s))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

TEST_CASE("an abandoned cart is POSTed once to the email destination, signed like a webhook", "[schedule][integration]") {
  http_receiver receiver;
  setup s(receiver);
  server_process srv(s.data, s.args());
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  REQUIRE(ws.send(consent_msg("c-1", "jane@example.com")));
  read_reply(ws, "c-1");
  REQUIRE(ws.send(event_msg("e-1", "jane@example.com", "cart_add", R"(,"properties":{"sku":"SKU-42"})")));
  auto reply = read_reply(ws, "e-1");
  std::string profile_id = reply["profile_id"].GetString();

  REQUIRE(receiver.wait_until([](const auto& got) { return !got.empty(); }, std::chrono::seconds(20)));
  auto post = receiver.requests().front();
  CHECK(post.method == "POST");
  CHECK(post.target == "/hook");
  CHECK(nudge::net::verify_webhook_signature(post.signature, secret, post.body, std::chrono::system_clock::now(),
                                             std::chrono::seconds(300)));
  CHECK_FALSE(nudge::net::verify_webhook_signature(post.signature, "another secret", post.body,
                                                   std::chrono::system_clock::now(), std::chrono::seconds(300)));
  auto body = parse(post.body);
  REQUIRE(body.IsObject());
  CHECK(std::string(body["type"].GetString()) == "decision");
  CHECK(body["id"].IsNull());
  CHECK(std::string(body["trigger"]["type"].GetString()) == "schedule");
  CHECK(std::string(body["trigger"]["id"].GetString()) == "abandoned_cart");
  CHECK(std::string(body["trigger"]["name"].GetString()) == "cart_abandoned");
  CHECK(std::string(body["channel"].GetString()) == "email");
  CHECK(std::string(body["identities"]["email"].GetString()) == "jane@example.com");
  CHECK(std::string(body["profile_id"].GetString()) == profile_id);
  CHECK(std::string(body["decision_id"].GetString()).rfind("d-", 0) == 0);
  REQUIRE(body["actions"].Size() == 1);
  CHECK(std::string(body["actions"][0]["action"].GetString()) == "cart_email");
  CHECK(std::string(body["actions"][0]["payload"]["template"].GetString()) == "cart_abandoned_email");

  // The live connection of the profile gets the same decision as a push.
  auto frame = ws.read(std::chrono::seconds(10));
  REQUIRE(frame);
  auto push = parse(*frame);
  REQUIRE(push.IsObject());
  CHECK(push["id"].IsNull());
  CHECK(push["trigger"]["type"].GetString() == std::string("schedule"));
  CHECK(push["decision_id"].GetString() == std::string(body["decision_id"].GetString()));

  // Delivered and deleted from the outbox; one firing, one POST.
  REQUIRE(stats_until(srv, [](const auto& st) {
    return st["outbox"]["delivered"].GetUint64() == 1 && st["outbox"]["backlog"].GetUint64() == 0;
  }, std::chrono::seconds(10)));
  auto st = stats(srv);
  CHECK(st["timers"]["armed"].GetUint64() == 0);
  CHECK(st["timers"]["decisions_sent"].GetUint64() == 1);
  CHECK(receiver.count() == 1);
  auto metrics = http_call(srv.port(), "GET", "/metrics").body;
  CHECK(metrics.find("nudge_outbox_delivered_total 1\n") != std::string::npos);
  CHECK(metrics.find("nudge_outbox_backlog 0\n") != std::string::npos);
  // The firing is in the profile: a cart_abandoned event and a decision on email.
  auto prof = parse(http_call(srv.port(), "GET", "/v1/profiles/" + profile_id, "",
                              {{"Authorization", "Bearer " + srv.admin_token()}}).body);
  bool emitted = false;
  for (const auto& e : prof["recent_events"].GetArray())
    emitted = emitted || e["name"].GetString() == std::string("cart_abandoned");
  CHECK(emitted);
}

TEST_CASE("a purchase before the deadline cancels the timer, and a re-armed timer fires once", "[schedule][integration]") {
  http_receiver receiver;
  setup s(receiver);
  server_process srv(s.data, s.args());
  // buyer: cancelled by the purchase; twice: re-armed 1 s later; control: fires.
  send_batch(srv, {consent_msg("c-b", "buyer@example.com"), consent_msg("c-t", "twice@example.com"),
                   consent_msg("c-c", "control@example.com"), event_msg("e-b1", "buyer@example.com", "cart_add"),
                   event_msg("e-t1", "twice@example.com", "cart_add"),
                   event_msg("e-b2", "buyer@example.com", "purchase")});
  std::this_thread::sleep_for(std::chrono::seconds(1));
  send_batch(srv, {event_msg("e-t2", "twice@example.com", "cart_add"), event_msg("e-c1", "control@example.com", "cart_add")});
  // The control was armed last, together with the re-arm: once it is delivered, the
  // re-armed one is due too; then a further 2 s window in which nothing more arrives.
  REQUIRE(receiver.wait_until([](const auto& got) {
    return count_for(got, "control@example.com") == 1 && count_for(got, "twice@example.com") == 1;
  }, std::chrono::seconds(20)));
  REQUIRE(stats_until(srv, [](const auto& st) { return st["timers"]["armed"].GetUint64() == 0; }, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto got = receiver.requests();
  CHECK(count_for(got, "buyer@example.com") == 0);
  CHECK(count_for(got, "twice@example.com") == 1);
  CHECK(count_for(got, "control@example.com") == 1);
  CHECK(got.size() == 2);
}

TEST_CASE("a timer whose marketing_email consent was withdrawn sends nothing, and without analytics none is armed", "[schedule][integration][consent]") {
  http_receiver receiver;
  setup s(receiver);
  server_process srv(s.data, s.args());
  send_batch(srv, {consent_msg("c-w", "withdrawn@example.com"), consent_msg("c-c", "control@example.com"),
                   R"({"type":"consent","id":"c-n","identities":{"email":"noanalytics@example.com"},)"
                   R"("purposes":{"marketing_email":"granted","personalization":"granted"}})",
                   event_msg("e-w", "withdrawn@example.com", "cart_add"),
                   event_msg("e-c", "control@example.com", "cart_add"),
                   event_msg("e-n", "noanalytics@example.com", "cart_add"),
                   consent_msg("c-w2", "withdrawn@example.com", "denied")});
  CHECK(stats(srv)["timers"]["armed"].GetUint64() == 2);
  REQUIRE(receiver.wait_until([](const auto& got) { return count_for(got, "control@example.com") == 1; },
                              std::chrono::seconds(20)));
  // Both timers came due (the withdrawn one fired and decided on nothing).
  REQUIRE(stats_until(srv, [](const auto& st) {
    return st["timers"]["armed"].GetUint64() == 0 && st["timers"]["fired"].GetUint64() == 2;
  }, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(count_for(receiver.requests(), "withdrawn@example.com") == 0);
  CHECK(count_for(receiver.requests(), "noanalytics@example.com") == 0);
  CHECK(receiver.count() == 1);
  CHECK(stats(srv)["timers"]["decisions_sent"].GetUint64() == 1);
}

TEST_CASE("a timer armed before a SIGKILL fires once after a restart past its due time", "[schedule][integration][crash]") {
  http_receiver receiver;
  setup s(receiver);
  {
    server_process srv(s.data, s.args());
    send_batch(srv, {consent_msg("c-k", "killed@example.com"), event_msg("e-k", "killed@example.com", "cart_add")});
    CHECK(srv.stop(SIGKILL) == 128 + SIGKILL);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CHECK(receiver.count() == 0);
  server_process srv(s.data, s.args());
  REQUIRE(receiver.wait_until([](const auto& got) { return count_for(got, "killed@example.com") == 1; },
                              std::chrono::seconds(20)));
  REQUIRE(stats_until(srv, [](const auto& st) {
    return st["timers"]["armed"].GetUint64() == 0 && st["outbox"]["backlog"].GetUint64() == 0;
  }, std::chrono::seconds(10)));
  // A second restart finds nothing left to fire or send.
  CHECK(srv.stop(SIGTERM) == 0);
  server_process again(s.data, s.args());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  CHECK(receiver.count() == 1);
  CHECK(stats(again)["outbox"]["backlog"].GetUint64() == 0);
}

TEST_CASE("a start that cannot listen, over a data dir with due timers, exits 1 cleanly and loses none of them",
          "[schedule][integration][crash]") {
  // Timers fire from the service's start, before it listens: the failed start has
  // profile actors running when it shuts down (they once outlived what they use, and
  // such a start died of SIGSEGV instead of exiting 1).
  constexpr int profiles = 3000;
  http_receiver receiver;
  setup s(receiver, "granted", "1s");
  auto armed_by = std::chrono::steady_clock::now();
  {
    server_process srv(s.data, s.args());
    for (int first = 0; first < profiles; first += 400) {
      std::vector<std::string> batch;
      for (int i = first; i < std::min(first + 400, profiles); ++i)
        batch.push_back(event_msg("e-" + std::to_string(i), "f" + std::to_string(i) + "@example.com", "cart_add"));
      send_batch(srv, batch);
    }
    armed_by = std::chrono::steady_clock::now();
    REQUIRE(srv.stop(SIGTERM) == 0);
  }
  std::this_thread::sleep_until(armed_by + std::chrono::milliseconds(1500));

  // A port another socket holds.
  int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(holder >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(holder, 1) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const auto taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto args = s.args();
    args.insert(args.begin(), "serve");
    for (const auto& a : {std::string("--listen"), taken, std::string("--data"), s.data.string()})
      args.push_back(a);
    std::string out;
    const int rc = run_nudge(args, out);
    INFO("attempt " << attempt << ": " << out);
    CHECK(rc == 1);
    CHECK(out.find("listen " + taken) != std::string::npos);
  }
  ::close(holder);

  // Every timer still reaches the destination (a failed start may have sent some).
  server_process srv(s.data, s.args());
  REQUIRE(receiver.wait_until([](const auto& got) { return got.size() >= static_cast<std::size_t>(profiles); },
                              std::chrono::seconds(60)));
  REQUIRE(stats_until(srv, [](const auto& st) {
    return st["timers"]["armed"].GetUint64() == 0 && st["outbox"]["backlog"].GetUint64() == 0;
  }, std::chrono::seconds(20)));
  std::set<std::string> emails;
  for (const auto& r : receiver.requests())
    if (r.answered / 100 == 2)
      emails.insert(parse(r.body)["identities"]["email"].GetString());
  CHECK(emails.size() == static_cast<std::size_t>(profiles));
}

TEST_CASE("a destination answering 503 gets the decision once it answers 200, across restarts", "[schedule][integration][crash]") {
  std::atomic<int> status{503};
  http_receiver receiver([&](const received_request&) { return status.load(); });
  setup s(receiver);
  std::string decision_id;
  {
    server_process srv(s.data, s.args());
    send_batch(srv, {consent_msg("c-d", "down@example.com"), event_msg("e-d", "down@example.com", "cart_add")});
    REQUIRE(receiver.wait_until([](const auto& got) { return got.size() >= 2; }, std::chrono::seconds(20)));
    // The receiver records a request before it answers, so the second 503 may still be on its way back.
    REQUIRE(stats_until(srv, [](const auto& st) { return st["outbox"]["retries"].GetUint64() >= 2; },
                        std::chrono::seconds(10)));
    CHECK(stats(srv)["outbox"]["backlog"].GetUint64() == 1);
    decision_id = parse(receiver.requests().front().body)["decision_id"].GetString();
    CHECK(srv.stop(SIGKILL) == 128 + SIGKILL);
  }
  auto before = receiver.count();
  {
    // Still down: the restarted service tries again from its outbox.
    server_process srv(s.data, s.args());
    REQUIRE(receiver.wait_until([&](const auto& got) { return got.size() > before; }, std::chrono::seconds(20)));
    CHECK(stats(srv)["outbox"]["backlog"].GetUint64() == 1);
    CHECK(srv.stop(SIGTERM) == 0);
  }
  status = 200;
  server_process srv(s.data, s.args());
  REQUIRE(receiver.wait_until([](const auto& got) { return count_for(got, "down@example.com") == 1; },
                              std::chrono::seconds(20)));
  REQUIRE(stats_until(srv, [](const auto& st) { return st["outbox"]["backlog"].GetUint64() == 0; },
                      std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto got = receiver.requests();
  CHECK(count_for(got, "down@example.com") == 1);
  for (const auto& r : got)  // every attempt carried the same idempotency key
    CHECK(parse(r.body)["decision_id"].GetString() == decision_id);
}

TEST_CASE("failed attempts are counted across restarts: max_attempts gives an entry up however often the service "
          "restarts",
          "[schedule][integration][crash]") {
  http_receiver receiver([](const received_request&) { return 503; });
  setup s(receiver, "denied", "2s", 3);
  {
    server_process srv(s.data, s.args());
    send_batch(srv, {consent_msg("c-r", "retry@example.com"), event_msg("e-r", "retry@example.com", "cart_add")});
    REQUIRE(receiver.wait_until([](const auto& got) { return got.size() >= 2; }, std::chrono::seconds(20)));
    // Both failures were handled (each stores the count) before the service stops.
    REQUIRE(stats_until(srv, [](const auto& st) { return st["outbox"]["retries"].GetUint64() >= 2; },
                        std::chrono::seconds(10)));
    CHECK(srv.stop(SIGTERM) == 0);
  }
  REQUIRE(receiver.count() == 2);
  // Two of three attempts are spent: the restarted service tries once more, then
  // moves the entry to the failed table.
  server_process srv(s.data, s.args());
  REQUIRE(stats_until(srv, [](const auto& st) { return st["outbox"]["failed"].GetUint64() == 1; },
                      std::chrono::seconds(20)));
  CHECK(stats(srv)["outbox"]["backlog"].GetUint64() == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(receiver.count() == 3);
}

TEST_CASE("a restart waits out the backoff that the last failed attempt stored before it tries again",
          "[schedule][integration][crash]") {
  std::mutex m;
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  http_receiver receiver([&](const received_request&) {
    std::lock_guard<std::mutex> guard(m);
    arrivals.push_back(std::chrono::steady_clock::now());
    return 503;
  });
  setup s(receiver, "denied", "2s", 20);
  {
    server_process srv(s.data, s.args());
    send_batch(srv, {consent_msg("c-b", "backoff@example.com"), event_msg("e-b", "backoff@example.com", "cart_add")});
    // Attempts 1-3 fail at once, after 0.5-1 s and after 1-2 s more; the third
    // failure stores a backoff of 2-4 s (base 1 s · 2^2, times a factor in [0.5, 1]).
    REQUIRE(stats_until(srv, [](const auto& st) { return st["outbox"]["retries"].GetUint64() >= 3; },
                        std::chrono::seconds(20)));
    CHECK(srv.stop(SIGTERM) == 0);
  }
  std::chrono::steady_clock::time_point third;
  {
    std::lock_guard<std::mutex> guard(m);
    REQUIRE(arrivals.size() == 3);
    third = arrivals[2];
  }
  server_process srv(s.data, s.args());
  REQUIRE(receiver.wait_until([](const auto& got) { return got.size() >= 4; }, std::chrono::seconds(20)));
  std::lock_guard<std::mutex> guard(m);
  // Before, the restarted service tried at once: a few hundred milliseconds after the
  // third attempt. Now not before the stored backoff's shortest draw.
  CHECK(arrivals[3] - third >= std::chrono::milliseconds(1900));
}

TEST_CASE("50,000 timers that came due while the service was down are all delivered while a live WebSocket client keeps getting replies", "[schedule][integration][load]") {
  const int profiles = std::getenv("NUDGE_TIMERS") ? std::atoi(std::getenv("NUDGE_TIMERS")) : 50000;
  http_receiver receiver;
  setup s(receiver, "granted", "30s");
  auto armed_by = std::chrono::steady_clock::now();
  {
    server_process srv(s.data, s.args());
    constexpr int per_batch = 400;  // within max_message_bytes
    auto started = std::chrono::steady_clock::now();
    for (int first = 0; first < profiles; first += per_batch) {
      std::vector<std::string> batch;
      for (int i = first; i < std::min(first + per_batch, profiles); ++i)
        batch.push_back(event_msg("e-" + std::to_string(i), "u" + std::to_string(i) + "@example.com", "cart_add"));
      send_batch(srv, batch);
    }
    armed_by = std::chrono::steady_clock::now();
    WARN("armed " << profiles << " timers in "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(armed_by - started).count() << " ms");
    // None came due yet: they all come due while the service is down.
    auto st = stats(srv);
    REQUIRE(st["timers"]["armed"].GetUint64() == static_cast<std::uint64_t>(profiles));
    REQUIRE(st["timers"]["fired"].GetUint64() == 0);
    REQUIRE(srv.stop(SIGTERM) == 0);
  }
  std::this_thread::sleep_until(armed_by + std::chrono::seconds(31));
  CHECK(receiver.count() == 0);

  server_process srv(s.data, s.args());
  auto started = std::chrono::steady_clock::now();
  ws_client ws;
  REQUIRE(ws.connect(srv.port(), "?key=" + srv.write_key()) == 101);
  int replies = 0;
  auto slowest = std::chrono::milliseconds(0);
  auto drained = std::chrono::milliseconds(-1);  // from the start to the last POST
  auto until = started + std::chrono::seconds(75);
  while (std::chrono::steady_clock::now() < until) {
    auto id = "live-" + std::to_string(replies);
    auto sent = std::chrono::steady_clock::now();
    REQUIRE(ws.send(R"({"type":"event","id":")" + id + R"(","name":"page_view","identities":{"anonymous_id":"live"}})"));
    auto reply = read_reply(ws, id);
    REQUIRE(reply.IsObject());
    REQUIRE(std::string(reply["type"].GetString()) == "decision");
    slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent));
    ++replies;
    if (receiver.count() >= static_cast<std::size_t>(profiles)) {
      drained = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::set<std::string> decisions;
  for (const auto& r : receiver.requests())
    decisions.insert(parse(r.body)["decision_id"].GetString());
  WARN("live replies during the flood: " << replies << ", slowest " << slowest.count() << " ms; all delivered "
       << drained.count() << " ms after the start; stats "
       << http_call(srv.port(), "GET", "/v1/stats", "", {{"Authorization", "Bearer " + srv.admin_token()}}).body);
  CHECK(decisions.size() == static_cast<std::size_t>(profiles));
  REQUIRE(stats_until(srv, [](const auto& st) { return st["outbox"]["backlog"].GetUint64() == 0; },
                      std::chrono::seconds(10)));
  CHECK(stats(srv)["outbox"]["delivered"].GetUint64() == static_cast<std::uint64_t>(profiles));
  CHECK(stats(srv)["timers"]["armed"].GetUint64() == 0);
}
