#include "storage/profile_table.hpp"

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

#include <algorithm>
#include <iterator>
#include <optional>
#include <span>

namespace nudge::storage::profile_table {

namespace {

/// The key of chunk `chunk` of profile `id`, in `k`.
std::string& chunk_key(std::string& k, std::string_view id, std::uint64_t chunk) {
  k.assign(id);
  k.push_back('\0');
  detail::append_be64(k, chunk);
  return k;
}

/// One of a profile's chunked logs: its records and their base in the state, where
/// its chunks are kept, how many records a chunk holds, and how one is written and read.
template <class Record, std::uint64_t PerChunk, auto Records,
          std::uint64_t policies::profile_state::*Base, MDB_dbi (env::*Table)() const noexcept,
          void (*Encode)(std::span<const Record>, std::uint64_t, msgpack::sbuffer&),
          std::error_code (*Decode)(std::span<const std::byte>, std::uint64_t&, std::vector<Record>&)>
struct chunked_log {
  using record = Record;
  static constexpr std::uint64_t per_chunk = PerChunk;
  static constexpr auto encode = Encode;
  static constexpr auto decode = Decode;
  static MDB_dbi table(const env& e) noexcept { return (e.*Table)(); }
  static auto& of(policies::profile_state& s) noexcept { return s.*Records; }
  static const auto& of(const policies::profile_state& s) noexcept { return s.*Records; }
  static std::uint64_t base(const policies::profile_state& s) noexcept { return s.*Base; }
};

using decisions_log = chunked_log<policies::decision_record, decisions_per_chunk, &policies::profile_state::decisions,
                                  &policies::profile_state::decisions_base, &env::decision_chunks,
                                  encode_decision_chunk, decode_decision_chunk>;
using history_log = chunked_log<policies::event_record, events_per_chunk, &policies::profile_state::history,
                                &policies::profile_state::history_base, &env::history_chunks, encode_event_chunk,
                                decode_event_chunk>;
using seen_log = chunked_log<policies::seen_message, seen_per_chunk, &policies::profile_state::seen,
                             &policies::profile_state::seen_base, &env::seen_chunks, encode_seen_chunk,
                             decode_seen_chunk>;

/// Reads the records [base, + count) of one of profile `id`'s logs from their chunks
/// into the state, ahead of those its core held inline (the newest seen messages);
/// corrupt when one is missing or does not hold them.
template <class Log>
std::error_code read_chunks(read_txn& tx, std::string_view id, policies::profile_state& state, std::uint64_t count) {
  auto& out = Log::of(state);
  if (count == 0)
    return {};
  auto inline_tail = std::move(out);
  out.clear();
  out.reserve(count + inline_tail.size());
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), Log::table(tx.environment()), rc);
  if (rc != MDB_SUCCESS)
    return detail::from_mdb(rc);
  const std::uint64_t end = Log::base(state) + count;
  std::uint64_t next = Log::base(state);
  std::uint64_t chunk = next / Log::per_chunk;
  std::string k;
  MDB_val key = detail::to_val(chunk_key(k, id, chunk));
  MDB_val value{};
  rc = mdb_cursor_get(cur.get(), &key, &value, MDB_SET_KEY);
  std::vector<typename Log::record> run;
  while (next < end) {
    if (rc == MDB_NOTFOUND)
      return errc::corrupt;
    if (rc != MDB_SUCCESS)
      return detail::from_mdb(rc);
    if (detail::to_view(key) != chunk_key(k, id, chunk))
      return errc::corrupt;  // a chunk of the log is missing
    std::uint64_t first = 0;
    if (auto ec = Log::decode(detail::to_bytes(value), first, run))
      return ec;
    if (first > next || first + run.size() <= next)
      return errc::corrupt;
    const std::uint64_t stop = std::min<std::uint64_t>(first + run.size(), end);
    for (; next < stop; ++next)
      out.push_back(std::move(run[next - first]));
    ++chunk;
    if (next < end)
      rc = mdb_cursor_get(cur.get(), &key, &value, MDB_NEXT);
  }
  out.insert(out.end(), std::make_move_iterator(inline_tail.begin()), std::make_move_iterator(inline_tail.end()));
  return {};
}

/// Deletes the chunks of profile `id` in `table` numbered below `below`.
void drop_chunks(write_txn& tx, MDB_dbi table, std::string_view id, std::uint64_t below) {
  // Both bounds in the one key buffer: [id 0 be64(0), id 0 be64(below)).
  auto& k = detail::key_buffer(tx);
  chunk_key(k, id, 0);
  const std::size_t n = k.size();
  k.append(id);
  k.push_back('\0');
  detail::append_be64(k, below);
  const std::string_view keys(k);
  detail::erase_range(tx, table, keys.substr(0, n), keys.substr(n));
}

/// The chunks of one log from the one holding ordinal max(`sealed`, base) up to ordinal
/// `end` (all its records when not given; the seen messages' core keeps those after
/// their last full chunk).
template <class Log>
encoded_log encode_log(const policies::profile_state& state, std::uint64_t sealed, msgpack::sbuffer& buffer,
                       std::optional<std::uint64_t> end_at = std::nullopt) {
  encoded_log out;
  const auto& records = Log::of(state);
  const std::uint64_t base = Log::base(state);
  const std::uint64_t end = std::max(base, end_at.value_or(base + records.size()));
  out.drop_below = base / Log::per_chunk;
  out.first_chunk = std::max(sealed, base) / Log::per_chunk;
  for (std::uint64_t c = out.first_chunk; c * Log::per_chunk < end; ++c) {
    const std::uint64_t lo = std::max(c * Log::per_chunk, base);
    const std::uint64_t hi = std::min((c + 1) * Log::per_chunk, end);
    if (lo >= hi)
      break;  // nothing of the log from here (an empty log, or no full chunk past base)
    buffer.clear();
    Log::encode(std::span(records).subspan(lo - base, hi - lo), lo, buffer);
    out.chunks.emplace_back(buffer.data(), buffer.size());
  }
  return out;
}

void put_log(write_txn& tx, MDB_dbi table, std::string_view id, const encoded_log& log) {
  auto& k = detail::key_buffer(tx);
  for (std::size_t i = 0; i < log.chunks.size(); ++i)
    detail::put(tx, table, chunk_key(k, id, log.first_chunk + i), log.chunks[i]);
  if (log.drop_below > 0)
    drop_chunks(tx, table, id, log.drop_below);
}

/// The stored core of `id` (its bytes in the profiles table); nullopt when absent or,
/// with `ec` set, when it cannot be read.
std::optional<MDB_val> core_value(read_txn& tx, std::string_view id, std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return std::nullopt;
  }
  return detail::get(tx, tx.environment().profiles(), id, ec);
}

/// The snapshot of `id` from the profiles table alone (its logs still in their
/// chunks where `in_chunks` says so); as get() otherwise.
std::optional<profile_snapshot> get_core(read_txn& tx, std::string_view id, std::error_code& ec,
                                         chunked_logs& in_chunks) {
  auto value = core_value(tx, id, ec);
  if (!value)
    return std::nullopt;
  std::optional<profile_snapshot> out(std::in_place);
  if ((ec = decode(detail::to_bytes(*value), *out, in_chunks)))
    return std::nullopt;
  return out;
}

}  // namespace

std::optional<profile_snapshot> get(read_txn& tx, std::string_view id, std::error_code& ec, chunk_marks* sealed) {
  if (sealed)
    *sealed = {};
  chunked_logs in_chunks;
  auto out = get_core(tx, id, ec, in_chunks);
  if (!out)
    return out;
  if ((in_chunks.decisions && (ec = read_chunks<decisions_log>(tx, id, out->state, *in_chunks.decisions))) ||
      (in_chunks.history && (ec = read_chunks<history_log>(tx, id, out->state, *in_chunks.history))) ||
      (in_chunks.seen && (ec = read_chunks<seen_log>(tx, id, out->state, *in_chunks.seen))))
    return std::nullopt;
  if (sealed) {
    const auto marks = sealed_after(out->state);
    sealed->decisions = in_chunks.decisions ? marks.decisions : 0;
    sealed->history = in_chunks.history ? marks.history : 0;
    sealed->seen = in_chunks.seen ? marks.seen : 0;
  }
  return out;
}

std::optional<std::uint64_t> stored_seq(read_txn& tx, std::string_view id, std::error_code& ec) {
  auto value = core_value(tx, id, ec);
  std::uint64_t seq = 0;
  if (!value || (ec = decode_seq(detail::to_bytes(*value), seq)))
    return std::nullopt;
  return seq;
}

void put(write_txn& tx, const profile_snapshot& snapshot) {
  put_encoded(tx, snapshot.state.id, encode(snapshot.state, snapshot.seq, {}));
}

encoded_snapshot encode(const policies::profile_state& state, std::uint64_t seq, chunk_marks sealed) {
  thread_local msgpack::sbuffer buffer;
  encoded_snapshot out;
  buffer.clear();
  // Seen messages: the full chunks beside the core, the newest (fewer than a chunk) in
  // it, so that a profile with few costs no page of another table per snapshot.
  const std::uint64_t seen_full = sealed_after(state).seen;
  const std::size_t seen_in_chunks = seen_full > state.seen_base ? seen_full - state.seen_base : 0;
  encode_snapshot_core(state, seq, buffer, seen_in_chunks);
  out.core.assign(buffer.data(), buffer.size());
  out.decisions = encode_log<decisions_log>(state, sealed.decisions, buffer);
  out.history = encode_log<history_log>(state, sealed.history, buffer);
  out.seen = encode_log<seen_log>(state, sealed.seen, buffer, seen_full);
  return out;
}

void put_encoded(write_txn& tx, std::string_view id, const encoded_snapshot& snapshot) {
  detail::check_usable(tx);
  const auto& e = tx.environment();
  detail::put(tx, e.profiles(), id, snapshot.core);
  put_log(tx, e.decision_chunks(), id, snapshot.decisions);
  put_log(tx, e.history_chunks(), id, snapshot.history);
  put_log(tx, e.seen_chunks(), id, snapshot.seen);
}

bool erase(write_txn& tx, std::string_view id) {
  const bool present = detail::del(tx, tx.environment().profiles(), id);
  auto& k = detail::key_buffer(tx);
  k.assign(id);
  k.push_back('\0');
  detail::erase_prefix(tx, tx.environment().decision_chunks(), k);
  detail::erase_prefix(tx, tx.environment().history_chunks(), k);
  detail::erase_prefix(tx, tx.environment().seen_chunks(), k);
  return present;
}

std::uint64_t count(read_txn& tx) {
  if (!tx)
    return 0;
  MDB_stat st{};
  if (mdb_stat(tx.get(), tx.environment().profiles(), &st) != MDB_SUCCESS)
    return 0;
  return st.ms_entries;
}

std::vector<std::string> ids_after(read_txn& tx, std::string_view after, std::size_t max,
                                   std::error_code& ec) {
  ec.clear();
  std::vector<std::string> ids;
  if (!tx) {
    ec = errc::txn_failed;
    return ids;
  }
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().profiles(), rc);
  if (rc != MDB_SUCCESS) {
    ec = detail::from_mdb(rc);
    return ids;
  }
  MDB_val key = detail::to_val(after);
  MDB_val value{};
  rc = after.empty() ? mdb_cursor_get(cur.get(), &key, &value, MDB_FIRST)
                     : mdb_cursor_get(cur.get(), &key, &value, MDB_SET_RANGE);
  if (rc == MDB_SUCCESS && !after.empty() && detail::to_view(key) == after)
    rc = mdb_cursor_get(cur.get(), &key, &value, MDB_NEXT);
  while (rc == MDB_SUCCESS && ids.size() < max) {
    ids.emplace_back(detail::to_view(key));
    rc = mdb_cursor_get(cur.get(), &key, &value, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
    ec = detail::from_mdb(rc);
  return ids;
}

}  // namespace nudge::storage::profile_table
