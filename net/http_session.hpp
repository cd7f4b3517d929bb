// One HTTP connection: reads requests one at a time (each with a deadline and a
// body limit), routes them, and upgrades GET /v1/stream to a ws_session after
// checking the write key and the Origin allowlist. Requests that go to actors are
// answered through a reply sink posted back to this session's executor; no handler
// ever waits for an actor.
#pragma once

#include "net/flex_stream.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace nudge::net {

class gateway;

class http_session : public std::enable_shared_from_this<http_session> {
public:
  /// `stream` is plain TCP, or TLS not yet handshaken (run() does the handshake).
  /// `slot`: its place in the per-address count (kept by a WebSocket it upgrades to).
  http_session(flex_stream&& stream, gateway& gw, std::shared_ptr<void> slot = {});
  ~http_session();
  void run();

  /// Sends `res` and reads the next request (or closes). On the strand.
  void write(http::response<http::string_body> res);

private:
  void on_handshake(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t n);
  void on_write(bool close, beast::error_code ec, std::size_t n);
  void route(http::request<http::string_body>& req);
  /// POST /v1/policy/validate, PUT /v1/policy (activate: persisted, then swapped).
  /// PUT /v1/profiles/{id}/consent: applied as a consent message of source "admin".
  void consent_update(http::request<http::string_body>& req, const std::string& profile_id);
  void policy_update(http::request<http::string_body>& req, bool activate);
  /// GET /v1/profiles/{id}/export, GET .../audit, DELETE /v1/profiles/{id}[?suppress=true]
  /// (after the admin check): answered by the profile actor, a merged-away id by its
  /// survivor. False when `rest` (the path after /v1/profiles/) is none of them.
  bool privacy_request(http::request<http::string_body>& req, std::string_view rest);

  flex_stream stream_;
  gateway& gw_;
  std::shared_ptr<void> slot_;  ///< its place in the per-address count (gateway::address_slot)
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<void> response_;  ///< keeps the response alive during async_write
  unsigned version_ = 11;
  bool keep_alive_ = true;
};

}  // namespace nudge::net
