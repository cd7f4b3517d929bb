#include "net/webhook.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace nudge;

namespace {

net::webhook_source helpdesk() {
  net::webhook_source w;
  w.id = "helpdesk";
  w.secret = "whsec_test";
  w.channel = "support";
  w.id_pointer = "/delivery_id";
  w.name_pointer = "/event";
  w.identities = {{"email", "/ticket/requester/email"}};
  w.properties = {{"ticket_id", "/ticket/id"}};
  w.names = {{"ticket.created", "support_ticket_opened"}};
  return w;
}

}  // namespace

TEST_CASE("a webhook body nested a million levels deep is refused with 422, not a stack overflow",
          "[webhook][hostile]") {
  constexpr int depth = 1 << 20;
  std::string body = R"({"delivery_id":"d-1","event":"ticket.created","ticket":{"requester":{"email":"a@b.c"},"id":)";
  for (int i = 0; i < depth; ++i) body += "[";
  for (int i = 0; i < depth; ++i) body += "]";
  body += "}}";
  std::string event;
  net::mapping_error err;
  REQUIRE_FALSE(net::map_webhook_body(helpdesk(), body, event, err));
  CHECK(err.message == "the body nests deeper than 64 levels");
}

TEST_CASE("a webhook body maps into an event carrying the mapped property", "[webhook]") {
  std::string event;
  net::mapping_error err;
  REQUIRE(net::map_webhook_body(
    helpdesk(), R"({"delivery_id":7,"event":"ticket.created","ticket":{"id":[1,{"x":2}],"requester":{"email":"a@b.c"}}})",
    event, err));
  CHECK(event == R"({"type":"event","id":"7","name":"support_ticket_opened","identities":{"email":"a@b.c"},)"
                 R"("properties":{"ticket_id":[1,{"x":2}]}})");
}

TEST_CASE("webhook signatures: malformed headers are refused without reading past them", "[webhook][hostile]") {
  const std::string body = "{}";
  auto now = std::chrono::system_clock::time_point{std::chrono::seconds{1'790'000'000}};
  const auto good = "t=1790000000,v1=" + net::webhook_signature("whsec_test", "1790000000", body);
  CHECK(net::verify_webhook_signature(good, "whsec_test", body, now, std::chrono::seconds{300}));
  for (std::string bad : {std::string(), std::string("t="), std::string("v1="), std::string(",,,,"),
                          std::string("t=1790000000,v1=") + std::string(63, 'a'),
                          std::string("t=99999999999999999999999,v1=") + std::string(64, 'a'),
                          std::string("t=-1790000000,v1=") + good.substr(good.size() - 64),
                          "t=1789999000" + good.substr(good.find(',')),
                          good.substr(0, good.size() - 1) + "0"})
    CHECK_FALSE(net::verify_webhook_signature(bad, "whsec_test", body, now, std::chrono::seconds{300}));
}

TEST_CASE("a webhook body without the mapping's timestamp maps into an event of the time of receipt", "[webhook]") {
  auto src = helpdesk();
  src.ts_pointer = "/occurred_at";
  std::string event;
  net::mapping_error err;
  // README's curl example, sent against deploy/nudge.toml's mapping (ts = "/occurred_at").
  REQUIRE(net::map_webhook_body(src,
                                R"({"delivery_id":"dlv-1","event":"ticket.created",)"
                                R"("ticket":{"id":1,"requester":{"email":"jane.doe@example.com"}}})",
                                event, err));
  CHECK(event == R"({"type":"event","id":"dlv-1","name":"support_ticket_opened",)"
                 R"("identities":{"email":"jane.doe@example.com"},"properties":{"ticket_id":1}})");

  REQUIRE(net::map_webhook_body(src,
                                R"({"delivery_id":"dlv-2","event":"ticket.created",)"
                                R"("occurred_at":"2026-11-24T09:58:12Z","ticket":{"requester":{"email":"a@b.c"}}})",
                                event, err));
  CHECK(event.find(R"("ts":"2026-11-24T09:58:12Z")") != std::string::npos);
  // null, as many helpdesks send an unset field: the time of receipt too.
  REQUIRE(net::map_webhook_body(src,
                                R"({"delivery_id":"dlv-4","event":"ticket.created","occurred_at":null,)"
                                R"("ticket":{"requester":{"email":"a@b.c"}}})",
                                event, err));
  CHECK(event.find(R"("ts")") == std::string::npos);

  SECTION("a timestamp that is there but is not one is refused, naming the pointer") {
    for (std::string value : {"1790000000", "{}", "[]", R"("yesterday")"}) {
      INFO(value);
      err = {};
      CHECK_FALSE(net::map_webhook_body(
        src, R"({"delivery_id":"dlv-3","event":"ticket.created","occurred_at":)" + value +
               R"(,"ticket":{"requester":{"email":"a@b.c"}}})",
        event, err));
      CHECK(err.message.rfind("/occurred_at: ", 0) == 0);
    }
  }
}

TEST_CASE("webhook signatures: any one of several v1 entries may match, as a secret rotation needs", "[webhook]") {
  const std::string body = R"({"delivery_id":"d-1"})";
  auto now = std::chrono::system_clock::time_point{std::chrono::seconds{1'790'000'000}};
  const auto tolerance = std::chrono::seconds{300};
  const auto good = net::webhook_signature("whsec_new", "1790000000", body);
  const auto old = net::webhook_signature("whsec_old", "1790000000", body);
  CHECK(net::verify_webhook_signature("t=1790000000,v1=" + good + ",v1=" + old, "whsec_new", body, now, tolerance));
  CHECK(net::verify_webhook_signature("t=1790000000,v1=" + old + ",v1=" + good, "whsec_new", body, now, tolerance));
  CHECK(net::verify_webhook_signature("t=1790000000,v1=" + old + ",v1=" + good, "whsec_old", body, now, tolerance));
  CHECK(net::verify_webhook_signature("v1=" + old + ", t=1790000000, v1=short, v1=" + good, "whsec_new", body, now,
                                      tolerance));
  // None matches, no t, a stale t: refused whatever the v1 entries hold.
  CHECK_FALSE(net::verify_webhook_signature("t=1790000000,v1=" + old + ",v1=" + std::string(64, '0'), "whsec_new",
                                            body, now, tolerance));
  CHECK_FALSE(net::verify_webhook_signature("v1=" + good + ",v1=" + old, "whsec_new", body, now, tolerance));
  const auto stale = net::webhook_signature("whsec_new", "1789999000", body);
  CHECK_FALSE(net::verify_webhook_signature("t=1789999000,v1=" + old + ",v1=" + stale, "whsec_new", body, now,
                                            tolerance));
}
