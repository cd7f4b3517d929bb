#include "storage/profile_table.hpp"

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

#include <algorithm>
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

/// Reads the decisions [state.decisions_base, + count) of profile `id` from their
/// chunks into state.decisions; corrupt when one is missing or does not hold them.
std::error_code read_chunks(read_txn& tx, std::string_view id, policies::profile_state& state, std::uint64_t count) {
  auto& out = state.decisions;
  out.clear();
  if (count == 0)
    return {};
  out.reserve(count);
  int rc = MDB_SUCCESS;
  detail::cursor cur(tx.get(), tx.environment().decision_chunks(), rc);
  if (rc != MDB_SUCCESS)
    return detail::from_mdb(rc);
  const std::uint64_t end = state.decisions_base + count;
  std::uint64_t next = state.decisions_base;
  std::uint64_t chunk = next / decisions_per_chunk;
  std::string k;
  MDB_val key = detail::to_val(chunk_key(k, id, chunk));
  MDB_val value{};
  rc = mdb_cursor_get(cur.get(), &key, &value, MDB_SET_KEY);
  std::vector<policies::decision_record> run;
  while (next < end) {
    if (rc == MDB_NOTFOUND)
      return errc::corrupt;
    if (rc != MDB_SUCCESS)
      return detail::from_mdb(rc);
    if (detail::to_view(key) != chunk_key(k, id, chunk))
      return errc::corrupt;  // a chunk of the log is missing
    std::uint64_t first = 0;
    if (auto ec = decode_decision_chunk(detail::to_bytes(value), first, run))
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
  return {};
}

/// Deletes the chunks of profile `id` numbered below `below`.
void drop_chunks(write_txn& tx, std::string_view id, std::uint64_t below) {
  // Both bounds in the one key buffer: [id 0 be64(0), id 0 be64(below)).
  auto& k = detail::key_buffer(tx);
  chunk_key(k, id, 0);
  const std::size_t n = k.size();
  k.append(id);
  k.push_back('\0');
  detail::append_be64(k, below);
  const std::string_view keys(k);
  detail::erase_range(tx, tx.environment().decision_chunks(), keys.substr(0, n), keys.substr(n));
}

/// The snapshot of `id` from the profiles table alone (its decisions still in their
/// chunks when `in_chunks` is set); as get() otherwise.
std::optional<profile_snapshot> get_core(read_txn& tx, std::string_view id, std::error_code& ec,
                                         std::optional<std::uint64_t>& in_chunks) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return std::nullopt;
  }
  auto value = detail::get(tx, tx.environment().profiles(), id, ec);
  if (!value)
    return std::nullopt;
  std::optional<profile_snapshot> out(std::in_place);
  if ((ec = decode(detail::to_bytes(*value), *out, in_chunks)))
    return std::nullopt;
  return out;
}

}  // namespace

std::optional<profile_snapshot> get(read_txn& tx, std::string_view id, std::error_code& ec, std::uint64_t* sealed) {
  if (sealed)
    *sealed = 0;
  std::optional<std::uint64_t> in_chunks;
  auto out = get_core(tx, id, ec, in_chunks);
  if (out && in_chunks) {
    if ((ec = read_chunks(tx, id, out->state, *in_chunks)))
      return std::nullopt;
    if (sealed)
      *sealed = sealed_after(out->state);
  }
  return out;
}

std::optional<std::uint64_t> stored_seq(read_txn& tx, std::string_view id, std::error_code& ec) {
  std::optional<std::uint64_t> in_chunks;
  auto out = get_core(tx, id, ec, in_chunks);
  return out ? std::optional<std::uint64_t>(out->seq) : std::nullopt;
}

void put(write_txn& tx, const profile_snapshot& snapshot) {
  put_encoded(tx, snapshot.state.id, encode(snapshot.state, snapshot.seq, 0));
}

encoded_snapshot encode(const policies::profile_state& state, std::uint64_t seq, std::uint64_t sealed) {
  thread_local msgpack::sbuffer buffer;
  encoded_snapshot out;
  buffer.clear();
  encode_snapshot_core(state, seq, buffer);
  out.core.assign(buffer.data(), buffer.size());
  const std::uint64_t base = state.decisions_base;
  const std::uint64_t end = base + state.decisions.size();
  out.drop_below = base / decisions_per_chunk;
  out.first_chunk = std::max(sealed, base) / decisions_per_chunk;
  for (std::uint64_t c = out.first_chunk; c * decisions_per_chunk < end; ++c) {
    const std::uint64_t lo = std::max(c * decisions_per_chunk, base);
    const std::uint64_t hi = std::min((c + 1) * decisions_per_chunk, end);
    buffer.clear();
    encode_decision_chunk(std::span(state.decisions).subspan(lo - base, hi - lo), lo, buffer);
    out.chunks.emplace_back(buffer.data(), buffer.size());
  }
  return out;
}

void put_encoded(write_txn& tx, std::string_view id, const encoded_snapshot& snapshot) {
  detail::check_usable(tx);
  detail::put(tx, tx.environment().profiles(), id, snapshot.core);
  const MDB_dbi chunks = tx.environment().decision_chunks();
  auto& k = detail::key_buffer(tx);
  for (std::size_t i = 0; i < snapshot.chunks.size(); ++i)
    detail::put(tx, chunks, chunk_key(k, id, snapshot.first_chunk + i), snapshot.chunks[i]);
  if (snapshot.drop_below > 0)
    drop_chunks(tx, id, snapshot.drop_below);
}

bool erase(write_txn& tx, std::string_view id) {
  const bool present = detail::del(tx, tx.environment().profiles(), id);
  auto& k = detail::key_buffer(tx);
  k.assign(id);
  k.push_back('\0');
  detail::erase_prefix(tx, tx.environment().decision_chunks(), k);
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
