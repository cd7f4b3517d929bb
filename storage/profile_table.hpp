// The profiles table: profile id → profile_snapshot (msgpack, see codec.hpp).
//
// A snapshot's decision log (up to decisions_max records, most of its bytes) is kept
// beside it, in the decision_chunks table: chunk c of a profile holds the decisions
// with ordinals [c * decisions_per_chunk, (c + 1) * decisions_per_chunk) (ordinals:
// policies::profile_state::decisions_base), keyed by the profile id, a zero byte and
// c (big-endian). A log only appends and drops from its front (or starts a new range
// of ordinals), so a full chunk never changes: a snapshot rewrites only the chunks
// from the first one not yet stored full (`sealed`, below), and one snapshot costs what
// changed since the last, not the whole log. Chunks below the log's first are deleted
// with the snapshot that leaves them behind.
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

/// The snapshot of `id`, its decisions read from their chunks; nullopt when absent,
/// or on failure with `ec` set (corrupt: undecodable, or a chunk missing; txn_failed:
/// empty read_txn). `sealed`, when given, receives sealed_after() of the snapshot
/// when its chunks are stored, else 0 (a snapshot from before the chunks).
std::optional<profile_snapshot> get(read_txn& tx, std::string_view id, std::error_code& ec,
                                    std::uint64_t* sealed = nullptr);

/// The journal seq the snapshot of `id` includes, without its decisions (the journal
/// index's start); nullopt when absent or, with `ec` set, as get() fails.
std::optional<std::uint64_t> stored_seq(read_txn& tx, std::string_view id, std::error_code& ec);

/// Inserts or replaces the snapshot under `snapshot.state.id`, every chunk of its log.
void put(write_txn& tx, const profile_snapshot& snapshot);

/// A snapshot encoded ahead of its commit (any thread, no copy of the state): what
/// put_encoded() stores.
struct encoded_snapshot {
  std::string core;                 ///< the profiles table's value
  std::uint64_t first_chunk = 0;    ///< the number of chunks.front()
  std::uint64_t drop_below = 0;     ///< the profile's chunks numbered below it go
  std::vector<std::string> chunks;  ///< the chunks first_chunk, first_chunk + 1, ...
  bool empty() const noexcept { return core.empty(); }
};

/// profile_snapshot{state, seq} with the chunks of its log from the one holding
/// ordinal max(`sealed`, state.decisions_base) on: `sealed` is an ordinal below which
/// stored chunks are known full and current (sealed_after() of a snapshot that
/// committed, or of one read back; 0 writes every chunk).
encoded_snapshot encode(const policies::profile_state& state, std::uint64_t seq, std::uint64_t sealed);

/// The ordinal below which the chunks of `state`'s log are full once a snapshot of
/// it is stored: the next snapshot may start there.
inline std::uint64_t sealed_after(const policies::profile_state& state) noexcept {
  const std::uint64_t end = state.decisions_base + state.decisions.size();
  return end - end % decisions_per_chunk;
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
