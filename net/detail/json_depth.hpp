// Nesting bounds for untrusted JSON. RapidJSON's default parser and every walk of a
// parsed value (Accept into a writer, flattening) recurse once per level, so a body of
// a few MiB of `[` would exhaust a thread's stack. Untrusted text is therefore parsed
// with policies::parse_json() (iterative) and its depth bounded with deeper_than()
// before anything recursive touches it. Pure; any thread.
#pragma once

#include <rapidjson/document.h>

namespace nudge::net::detail {

/// Whether `v` nests deeper than `limit` levels (a scalar is 0 deep, `{}` and `[]` 1).
/// Recurses at most limit + 1 levels, whatever the depth of `v`.
inline bool deeper_than(const rapidjson::Value& v, int limit) {
  if (v.IsObject()) {
    if (limit <= 0)
      return true;
    for (const auto& m : v.GetObject())
      if (deeper_than(m.value, limit - 1))
        return true;
  } else if (v.IsArray()) {
    if (limit <= 0)
      return true;
    for (const auto& e : v.GetArray())
      if (deeper_than(e, limit - 1))
        return true;
  }
  return false;
}

}  // namespace nudge::net::detail
