// Replies packed for the dedupe tables: what every stored first reply repeats, in
// fewer bytes.
//
// Every accepted message's first reply is kept for the dedupe window, which makes the
// replies most of what a busy service writes (docs/BENCHMARKS.md, "The closed loop
// over 45 s"). A reply names its message id and profile id, which the entry's key and
// value already hold, and repeats the key names of API.md's replies. JSON text has no
// raw byte below 0x20, so those bytes are free to stand for them:
//
// - 0x01: `"` message id `"`;  0x02: `"` profile id `"`.
// - 0x03 and 17 bytes: `"d-` and an id of 26 Crockford base32 characters (actors/ids)
//   and `"`: 130 bits, big-endian, padded with zeros.
// - 0x04 + i: fragment i of a fixed table (reply_pack.cpp).
//
// Part of the stored format: a token's meaning never changes; new ones take unused
// bytes. Packing is lossless for any text with no byte below 0x20; other bytes are
// refused (stored as they are by the caller).
#pragma once

#include <string>
#include <string_view>

namespace nudge::storage {

/// Packs `json` (a reply naming `message_id` and `profile_id`) into `out`
/// (overwritten). False, with `out` unspecified, when `json` holds a byte below 0x20.
bool pack_reply(std::string_view json, std::string_view message_id, std::string_view profile_id,
                std::string& out);

/// Unpacks what pack_reply() made for the same ids into `out` (overwritten). False,
/// with `out` unspecified, on an unknown token or a truncated id.
bool unpack_reply(std::string_view packed, std::string_view message_id, std::string_view profile_id,
                  std::string& out);

}  // namespace nudge::storage
