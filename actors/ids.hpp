// Identifiers: "p-" profiles, "d-" decisions. ULID-shaped (26 Crockford base32
// characters: milliseconds, then 80 bits that start random each millisecond and
// count up within it), so ids sort by creation time, also within one millisecond in
// one process: "the oldest profile" of a merge is the smallest id.
#pragma once

#include <string>

namespace nudge::actors {

/// A new id with the given prefix ("p" → "p-01JD..."). Thread-safe.
std::string new_id(char prefix);

}  // namespace nudge::actors
