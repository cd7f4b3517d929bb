// Turns one request (JSON text or MessagePack bytes) into a validated
// actors::inbound, or into the error reply's code and message (API.md section 3).
// Identity values are normalised, hashed and filtered for blocked placeholders here.
// Stateless apart from its reused parse buffers: one decoder per session/strand.
#pragma once

#include "actors/message.hpp"
#include "net/gateway_options.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace nudge::net {

/// RFC 3339 (`2026-11-24T10:00:00Z`, fractions and offsets allowed) → UTC ms.
std::optional<policies::timestamp> parse_rfc3339(std::string_view s);

struct decode_error {
  std::string id;       ///< the message's id when it could be read, else empty
  std::string code;     ///< invalid_message, unknown_identity_type, ...
  std::string message;  ///< `path + ": " + what is wrong`, or only the latter when `path` is empty
  std::string path;     ///< the JSON pointer of the problem; empty when it has none (unparsable text)
};

/// The `id` of a message (a `const rapidjson::Value*`, as for decode_value) when it is a
/// valid one, else empty: for answering a message refused before it is decoded.
std::string message_id(const void* value);

class decoder {
public:
  explicit decoder(const gateway_options& opts);
  ~decoder();

  /// Decodes `bytes` sent by `source`. On success fills `out` and returns true.
  bool decode(std::string_view bytes, actors::wire_format fmt, const stream_source& source,
              actors::inbound& out, decode_error& err);

  /// Decodes an already parsed JSON value (one element of an HTTP batch); `value` is
  /// a `const rapidjson::Value*` passed as void to keep RapidJSON out of this header.
  bool decode_value(const void* value, const stream_source& source, actors::inbound& out, decode_error& err,
                    bool need_identities = true);

  /// Normalises one identity (for look-ups by identity). False when blocked or empty.
  bool normalize(const identity_rule& rule, std::string_view raw, std::string& out) const;
  const identity_rule* rule(std::string_view type) const;

private:
  struct impl;
  const gateway_options& opts_;
  std::unique_ptr<impl> impl_;
};

}  // namespace nudge::net
