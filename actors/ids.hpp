// Identifiers: "p-" profiles, "d-" decisions. ULID-shaped (26 Crockford base32
// characters: 48 bits of milliseconds, then 80 random bits), so ids sort by
// creation time — "the oldest profile" of a merge is the smallest id.
#pragma once

#include <string>

namespace nudge::actors {

/// A new id with the given prefix ("p" → "p-01JD..."). Thread-safe.
std::string new_id(char prefix);

}  // namespace nudge::actors
