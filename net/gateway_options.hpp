// What the gateway needs from the config, as plain data (filled by app/).
#pragma once

#include "net/token_bucket.hpp"
#include "policies/policy.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <cstddef>
#include <regex>
#include <string>
#include <vector>

namespace nudge::net {

enum class normalizer { none, email, phone };

struct identity_rule {
  std::string type;
  int priority = 100;  ///< 1 is the highest
  normalizer normalize = normalizer::none;
  bool hash = false;   ///< store `sha256:HEX` of the normalised value
  bool anonymous = false;
  std::vector<std::string> blocked_exact;
  std::vector<std::regex> blocked_patterns;
};

struct stream_source {
  std::string id;
  std::string write_key;
  std::string channel;
  std::vector<std::string> allowed_origins;  ///< empty: any Origin
  /// `rate_limit`: shared by every connection and request of the source; null: none.
  std::shared_ptr<token_bucket> limiter;
};

/// A support tool posting signed JSON to POST /v1/webhooks/{id}; `map` holds JSON
/// pointers into its body (API.md section 2, examples/nudge.toml).
struct webhook_source {
  std::string id;
  std::string secret;
  std::string channel;
  std::string id_pointer;
  std::string name_pointer;
  std::string ts_pointer;  ///< empty: time of receipt
  std::vector<std::pair<std::string, std::string>> identities;  ///< type → pointer
  std::vector<std::pair<std::string, std::string>> properties;  ///< name → pointer
  std::vector<std::pair<std::string, std::string>> names;       ///< value at name → event name
  std::shared_ptr<token_bucket> limiter;  ///< `rate_limit`; null: none
};

struct gateway_options {
  std::size_t max_message_bytes = 65536;
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_address = 0;  ///< from one remote address; 0: no limit
  std::chrono::milliseconds ws_idle_timeout = std::chrono::minutes(5);
  std::size_t ws_max_pending_bytes = 4u << 20;
  std::size_t ws_max_inflight = 256;  ///< messages awaiting a reply before reads pause
  /// Deadline of one HTTP request (read whole), a TLS handshake and a WebSocket
  /// upgrade answer; also the idle time of a keep-alive connection.
  std::chrono::milliseconds http_timeout = std::chrono::seconds(30);
  std::vector<identity_rule> identities;  ///< sorted by priority, highest first
  std::vector<stream_source> sources;
  std::vector<webhook_source> webhooks;
  std::chrono::seconds webhook_tolerance{300};  ///< |now - t| allowed in Nudge-Signature
  std::string admin_token;
  /// PEM files; both set: every connection is TLS (https://, wss://).
  std::string tls_cert;
  std::string tls_key;
  std::vector<std::string> purposes;  ///< configured consent purposes
  policies::policy_limits policy_limits;  ///< what PUT /v1/policy validates against
  /// Counts identity values dropped as blocked placeholders (set by the gateway to
  /// its metrics; decoders on any thread add to it).
  std::atomic<std::uint64_t>* blocked_seen = nullptr;
};

}  // namespace nudge::net
