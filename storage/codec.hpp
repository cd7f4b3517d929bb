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
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include <msgpack/sbuffer.hpp>

#include "storage/audit_record.hpp"
#include "storage/dedupe_entry.hpp"
#include "storage/errc.hpp"
#include "storage/journal_entry.hpp"
#include "storage/outbox_entry.hpp"
#include "storage/profile_snapshot.hpp"

namespace nudge::storage {

inline constexpr std::uint64_t codec_version = 1;

/// Appends the encoding to `out` (clear it first to reuse it for one value). A
/// snapshot's decision log is inline.
void encode(const profile_snapshot& value, msgpack::sbuffer& out);
/// profile_snapshot{state, seq} with its decision log and history out of line: the
/// state records only where each starts (decisions_base, history_base) and how many it
/// holds; the records go in chunks (encode_decision_chunk, encode_event_chunk,
/// profile_table). Of its seen messages the first `seen_in_chunks` go in chunks too
/// (encode_seen_chunk; seen_base says where they start), the rest stay in the core. No
/// copy of `state`.
void encode_snapshot_core(const policies::profile_state& state, std::uint64_t seq, msgpack::sbuffer& out,
                          std::size_t seen_in_chunks = 0);
/// A run of a decision log: `decisions`, the first of them at `first_ordinal`.
void encode_decision_chunk(std::span<const policies::decision_record> decisions, std::uint64_t first_ordinal,
                           msgpack::sbuffer& out);
/// A run of a history: `events`, the first of them at `first_ordinal`.
void encode_event_chunk(std::span<const policies::event_record> events, std::uint64_t first_ordinal,
                        msgpack::sbuffer& out);
/// A run of a profile's seen messages: `seen`, the first of them at `first_ordinal`.
void encode_seen_chunk(std::span<const policies::seen_message> seen, std::uint64_t first_ordinal,
                       msgpack::sbuffer& out);
void encode(const journal_entry& value, msgpack::sbuffer& out);
/// The reply packed (reply_pack.hpp) for the message `message_id` (the key holds it)
/// when it is JSON text; as it is otherwise.
void encode(const dedupe_entry& value, std::string_view message_id, msgpack::sbuffer& out);
/// Only `created` and `body`: the ids live in the outbox key.
void encode(const outbox_entry& value, msgpack::sbuffer& out);
/// Encodes ts, kind and detail_json; profile_id is the table key, not the value.
void encode(const audit_record& value, msgpack::sbuffer& out);

/// Decodes `bytes` into `out` (overwritten). On failure returns errc::corrupt and
/// leaves `out` unspecified. A core from encode_snapshot_core() whose decisions or
/// history are in chunks is not a whole snapshot and is refused as corrupt (empty
/// logs are not).
std::error_code decode(std::span<const std::byte> bytes, profile_snapshot& out);
/// How many records of a snapshot core's logs are in their chunks (empty: inline).
struct chunked_logs {
  std::optional<std::uint64_t> decisions;
  std::optional<std::uint64_t> history;
  std::optional<std::uint64_t> seen;
};
/// A snapshot from encode_snapshot_core() decodes with no decisions or history and
/// only the seen messages it holds inline (those after the ones in chunks),
/// `in_chunks` saying how many their chunks hold; one from encode() (or older) with
/// what it holds inline and `in_chunks` empty for those logs (a core of schema 2 keeps
/// its history inline, its decisions in chunks; one of schema 3 its seen messages
/// inline).
std::error_code decode(std::span<const std::byte> bytes, profile_snapshot& out, chunked_logs& in_chunks);
/// Only the journal seq of a snapshot (from encode() or encode_snapshot_core()):
/// walks the bytes without building objects, so a start that asks every profile with
/// journal entries for its seq does not decode their states. Checks the framing and
/// the schema version as decode() does, not the state's fields.
std::error_code decode_seq(std::span<const std::byte> bytes, std::uint64_t& seq);
std::error_code decode_decision_chunk(std::span<const std::byte> bytes, std::uint64_t& first_ordinal,
                                      std::vector<policies::decision_record>& out);
std::error_code decode_event_chunk(std::span<const std::byte> bytes, std::uint64_t& first_ordinal,
                                   std::vector<policies::event_record>& out);
std::error_code decode_seen_chunk(std::span<const std::byte> bytes, std::uint64_t& first_ordinal,
                                  std::vector<policies::seen_message>& out);
std::error_code decode(std::span<const std::byte> bytes, journal_entry& out);
/// `message_id`: the one the entry was encoded for (a packed reply names it).
std::error_code decode(std::span<const std::byte> bytes, std::string_view message_id, dedupe_entry& out);
std::error_code decode(std::span<const std::byte> bytes, outbox_entry& out);
/// Leaves out.profile_id untouched (the caller knows it from the key).
std::error_code decode(std::span<const std::byte> bytes, audit_record& out);

}  // namespace nudge::storage
