// MessagePack encoding of the stored values. Every value is a msgpack array whose
// first element is its schema version (codec_version), then the fields in a fixed
// order; timestamps are int64 milliseconds since the epoch, policies::scalar is nil,
// bool, float64 or str. Decoders ignore trailing fields they do not know (so a field
// can be appended without a new version) and report errc::corrupt for anything else
// that does not match: bad bytes, a wrong type, another schema version. No function
// here throws except std::bad_alloc from encode. Any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include <msgpack/sbuffer.hpp>

#include "storage/audit_record.hpp"
#include "storage/dedupe_entry.hpp"
#include "storage/errc.hpp"
#include "storage/journal_entry.hpp"
#include "storage/outbox_entry.hpp"
#include "storage/profile_snapshot.hpp"

namespace nudge::storage {

inline constexpr std::uint64_t codec_version = 1;

/// Appends the encoding to `out` (clear it first to reuse it for one value).
void encode(const profile_snapshot& value, msgpack::sbuffer& out);
/// The same bytes as encode(profile_snapshot{state, seq}, out), without the copy of `state`.
void encode_snapshot(const policies::profile_state& state, std::uint64_t seq, msgpack::sbuffer& out);
void encode(const journal_entry& value, msgpack::sbuffer& out);
void encode(const dedupe_entry& value, msgpack::sbuffer& out);
/// Only `created` and `body`: the ids live in the outbox key.
void encode(const outbox_entry& value, msgpack::sbuffer& out);
/// Encodes ts, kind and detail_json; profile_id is the table key, not the value.
void encode(const audit_record& value, msgpack::sbuffer& out);

/// Decodes `bytes` into `out` (overwritten). On failure returns errc::corrupt and
/// leaves `out` unspecified.
std::error_code decode(std::span<const std::byte> bytes, profile_snapshot& out);
std::error_code decode(std::span<const std::byte> bytes, journal_entry& out);
std::error_code decode(std::span<const std::byte> bytes, dedupe_entry& out);
std::error_code decode(std::span<const std::byte> bytes, outbox_entry& out);
/// Leaves out.profile_id untouched (the caller knows it from the key).
std::error_code decode(std::span<const std::byte> bytes, audit_record& out);

}  // namespace nudge::storage
