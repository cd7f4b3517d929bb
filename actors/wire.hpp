// Reply encoding shared by the actors (which build replies) and the gateway (which
// decodes requests). Replies are built as compact JSON; a MessagePack request gets
// the same object transcoded. All functions are pure and thread-safe.
#pragma once

#include "actors/message.hpp"
#include "policies/policy.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace nudge::actors {

/// `{"type":"error","id":ID|null,"code":CODE,"message":TEXT}`; an empty id is null.
std::string error_reply(std::string_view id, std::string_view code, std::string_view message);

/// The answer to a message with a suppressed identity: `{"type":"decision","id":ID,
/// "suppressed":true,"actions":[]}` (`decision`), else `{"type":"ack","id":ID,"suppressed":true}`.
std::string suppressed_reply(std::string_view id, bool decision);

/// `{"error":{"code":CODE,"message":TEXT}}` for HTTP error bodies. With `id` (the
/// message the error answers; an empty id is null) the object also holds `"id"`; with
/// `details`, `"details":[{"path":POINTER,"message":TEXT},...]`, one item per problem.
std::string http_error(std::string_view code, std::string_view message,
                       std::optional<std::string_view> id = std::nullopt,
                       std::span<const policies::problem> details = {});

/// The reply with `"duplicate":true` appended (the reply is a JSON object).
std::string mark_duplicate(std::string_view json_reply);

/// JSON text → MessagePack bytes of the same value. Returns false on invalid JSON.
bool json_to_msgpack(std::string_view json, std::string& out);

/// MessagePack bytes → JSON text. Returns false on invalid or trailing bytes, or
/// when a map key is not a string, or nesting passes `max_depth`.
bool msgpack_to_json(std::string_view bytes, std::string& out, int max_depth = 32);

/// Encodes a reply for the request's format.
inline std::string encode_for(wire_format f, std::string json) {
  if (f == wire_format::json)
    return json;
  std::string out;
  json_to_msgpack(json, out);
  return out;
}

}  // namespace nudge::actors
