// Webhook ingestion (API.md sections 2 and 4): signature verification and the
// mapping of a body into an event message. Pure functions; any thread.
#pragma once

#include "net/gateway_options.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace nudge::net {

/// HMAC-SHA256(secret, t + "." + body) as lowercase hex.
std::string webhook_signature(std::string_view secret, std::string_view t, std::string_view body);

/// Checks a `Nudge-Signature: t=UNIX_SECONDS,v1=HEX[,v1=HEX...]` header: a well-formed
/// header, a timestamp within `tolerance` of `now`, and at least one v1 entry that is the
/// HMAC (each compared in constant time). Several entries let a sender sign with the new
/// and the old secret while a rotation is under way.
bool verify_webhook_signature(std::string_view header, std::string_view secret, std::string_view body,
                              std::chrono::system_clock::time_point now, std::chrono::seconds tolerance);

struct mapping_error {
  std::string message;        ///< names the JSON pointer that could not be mapped
  bool invalid_json = false;  ///< the body is not JSON at all (a 400, not a 422)
};

/// Maps a webhook body into the JSON text of an `event` message, or fails with the
/// pointer that could not be used (a missing required field, a name outside `names`, a
/// timestamp that is not one). A body without the `ts` pointer's field maps to an event
/// without `ts`: the time of receipt.
bool map_webhook_body(const webhook_source& src, std::string_view body, std::string& event_json, mapping_error& err);

}  // namespace nudge::net
