// The profiles table: profile id → profile_snapshot (msgpack, see codec.hpp).
//
// A snapshot's decision log and history (up to decisions_max and history_max_events
// records, most of its bytes) are kept beside it, in the decision_chunks and
// history_chunks tables: chunk c of a profile's log holds the records with ordinals
// [c * per_chunk, (c + 1) * per_chunk) (ordinals: policies::profile_state::
// decisions_base and history_base), keyed by the profile id, a zero byte and c
// (big-endian). A log only appends and drops from its front (or starts a new range of
// ordinals), so a full chunk never changes: a snapshot rewrites only the chunks from
// the first one not yet stored full (`sealed`, below), and one snapshot costs what
// changed since the last, not the whole log. Chunks below the log's first are deleted
// with the snapshot that leaves them behind. The profile's seen messages (16 bytes
// per message accepted within the dedupe window, up to dedupe_seen_max) are a third
// such log, in seen_chunks (seen_base), whose chunks are written only once full.
//
// Reads take a read_txn (any thread, see read_txn.hpp); writes take the write_txn of
// an env::commit (writer thread) and, on an LMDB failure, abort that commit (see
// write_txn.hpp). The returned values are copies: they outlive the transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "storage/profile_snapshot.hpp"
#include "storage/read_txn.hpp"
#include "storage/write_txn.hpp"

namespace nudge::storage::profile_table {

inline constexpr std::uint64_t decisions_per_chunk = 32;
/// Smaller than a decision chunk: an event is about half a decision's size, and the
/// chunk a snapshot rewrites most (the newest, not full) stays on its leaf page.
inline constexpr std::uint64_t events_per_chunk = 16;
/// 16 bytes each: a chunk of 1 KiB stays on its leaf page. Only full chunks of seen
/// messages are stored beside the core; the newest (fewer than a chunk) stay in it, so
/// that a profile with few costs no page of another table per snapshot.
inline constexpr std::uint64_t seen_per_chunk = 64;

/// Per log, an ordinal below which a profile's stored chunks are known full and
/// current (0: none).
struct chunk_marks {
  std::uint64_t decisions = 0;
  std::uint64_t history = 0;
  std::uint64_t seen = 0;
  bool operator==(const chunk_marks&) const = default;
};

/// The snapshot of `id`, its logs read from their chunks; nullopt when absent, or on
/// failure with `ec` set (corrupt: undecodable, or a chunk missing; txn_failed: empty
/// read_txn). `sealed`, when given, receives sealed_after() of each log whose chunks
/// are stored, else 0 for it (a snapshot that kept it inline).
std::optional<profile_snapshot> get(read_txn& tx, std::string_view id, std::error_code& ec,
                                    chunk_marks* sealed = nullptr);

/// The journal seq the snapshot of `id` includes, without its logs (the journal
/// index's start); nullopt when absent or, with `ec` set, when the core is unreadable
/// (its framing or schema version: codec's decode_seq; the state's fields are get()'s
/// to check, when the profile is activated).
std::optional<std::uint64_t> stored_seq(read_txn& tx, std::string_view id, std::error_code& ec);

/// Inserts or replaces the snapshot under `snapshot.state.id`, every chunk of its logs.
void put(write_txn& tx, const profile_snapshot& snapshot);

/// The chunks of one log that a snapshot writes.
struct encoded_log {
  std::uint64_t first_chunk = 0;    ///< the number of chunks.front()
  std::uint64_t drop_below = 0;     ///< the profile's chunks numbered below it go
  std::vector<std::string> chunks;  ///< the chunks first_chunk, first_chunk + 1, ...
};

/// A snapshot encoded ahead of its commit (any thread, no copy of the state): what
/// put_encoded() stores.
struct encoded_snapshot {
  std::string core;  ///< the profiles table's value
  encoded_log decisions;
  encoded_log history;
  encoded_log seen;
  bool empty() const noexcept { return core.empty(); }
};

/// profile_snapshot{state, seq} with the chunks of each log from the one holding
/// ordinal max(`sealed`, its base) on: `sealed` says below which ordinal stored chunks
/// are known full and current (sealed_after() of a snapshot that committed, or of one
/// read back; {} writes every chunk).
encoded_snapshot encode(const policies::profile_state& state, std::uint64_t seq, chunk_marks sealed);

/// The ordinals below which the chunks of `state`'s logs are full once a snapshot of
/// it is stored: the next snapshot may start there.
inline chunk_marks sealed_after(const policies::profile_state& state) noexcept {
  const std::uint64_t decisions = state.decisions_base + state.decisions.size();
  const std::uint64_t history = state.history_base + state.history.size();
  const std::uint64_t seen = state.seen_base + state.seen.size();
  return {decisions - decisions % decisions_per_chunk, history - history % events_per_chunk,
          seen - seen % seen_per_chunk};
}

/// Inserts or replaces the snapshot of `id` with encode()'s core and chunks.
void put_encoded(write_txn& tx, std::string_view id, const encoded_snapshot& snapshot);

/// True when `id` was present. Its chunks go too.
bool erase(write_txn& tx, std::string_view id);

/// Number of stored profiles.
std::uint64_t count(read_txn& tx);

/// Up to `max` ids greater than `after`, in key order ("" starts at the first):
/// pages through every profile for retention sweeps without holding one long txn.
std::vector<std::string> ids_after(read_txn& tx, std::string_view after, std::size_t max,
                                   std::error_code& ec);

}  // namespace nudge::storage::profile_table
