// Reads the top-level "id" and "type" of a reply frame without building a document:
// a SAX pass over JSON (RapidJSON) or a visitor pass over MessagePack (msgpack-c), which
// stops as soon as both are known. Works on the service's replies and on an echo of the
// bench's own request alike (an echo carries "type":"event" and the request's id).
//
// Not thread-safe: one scanner per session. The id view returned by id() points into
// the scanner and stays valid until the next scan(). No allocation once the id buffer
// has grown to the longest id seen.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace nudge::bench {

class reply_scanner {
public:
  reply_scanner() { id_.reserve(128); }

  /// Scans one frame; `binary` selects MessagePack, otherwise JSON. False when the
  /// frame is not a JSON object or MessagePack map.
  bool scan(const char* data, std::size_t size, bool binary);

  /// Whether the top-level "id" was a string, and its value.
  bool has_string_id() const { return has_string_id_; }
  std::string_view id() const { return id_; }
  /// Whether the top-level "type" was "error".
  bool is_error() const { return is_error_; }

  // The scan's results; public for the SAX handler and visitor in the .cpp only.
  struct state {
    std::string* id;
    bool has_string_id = false;
    bool has_type = false;
    bool is_error = false;
  };

private:
  std::string id_;
  bool has_string_id_ = false;
  bool is_error_ = false;
};

} // namespace nudge::bench
