#include "storage/dedupe_table.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/env.hpp"

namespace nudge::storage::dedupe_table {
namespace {

constexpr std::int64_t ms_per_day = 24 * 60 * 60 * 1000;
constexpr std::size_t day_bytes = 4;
constexpr std::size_t time_key_bytes = 16;  // the time and the hash

// Days since the epoch (UTC), clamped to the u32 range of the key.
std::uint32_t day_of(policies::timestamp ts) {
  const std::int64_t ms = ts.time_since_epoch().count();
  if (ms < 0)
    return 0;
  const std::int64_t day = ms / ms_per_day;
  return day > std::numeric_limits<std::uint32_t>::max()
             ? std::numeric_limits<std::uint32_t>::max()
             : static_cast<std::uint32_t>(day);
}

void make_key(std::string& key, std::uint32_t day, std::string_view source,
              std::string_view id) {
  key.clear();
  key.reserve(day_bytes + source.size() + 1 + id.size());
  detail::append_be32(key, day);
  key.append(source);
  key.push_back('\0');
  key.append(id);
}

void make_time_key(std::string& key, policies::timestamp ts, std::uint64_t key_hash, std::string_view source,
                   std::string_view id) {
  key.clear();
  key.reserve(time_key_bytes + source.size() + 1 + id.size());
  detail::append_be64(key, static_cast<std::uint64_t>(std::max<std::int64_t>(0, ts.time_since_epoch().count())));
  detail::append_be64(key, key_hash);
  key.append(source);
  key.push_back('\0');
  key.append(id);
}

/// The message id of a key of either table (after the source's '\0').
std::string_view message_id_of(std::string_view key, std::size_t prefix_bytes) {
  const auto end = key.find('\0', std::min(prefix_bytes, key.size()));
  return end == std::string_view::npos ? std::string_view{} : key.substr(end + 1);
}

std::size_t erase_named(write_txn& tx, MDB_dbi dbi, std::size_t prefix_bytes,
                        const std::vector<std::string>& profile_ids) {
  dedupe_entry entry;
  return detail::erase_if(tx, dbi, [&](std::string_view key, const MDB_val& v) {
    return !decode(detail::to_bytes(v), message_id_of(key, prefix_bytes), entry) &&
           std::find(profile_ids.begin(), profile_ids.end(), entry.profile_id) != profile_ids.end();
  });
}

}  // namespace

std::optional<dedupe_entry> get_by_time(read_txn& tx, policies::timestamp ts, std::uint64_t key_hash,
                                        std::string_view source, std::string_view id, std::error_code& ec) {
  ec.clear();
  std::string key;
  make_time_key(key, ts, key_hash, source, id);
  auto value = detail::get(tx, tx.environment().dedupe_by_time(), key, ec);
  if (!value)
    return std::nullopt;
  dedupe_entry entry;
  if ((ec = decode(detail::to_bytes(*value), id, entry)))
    return std::nullopt;
  return entry;
}

void put_by_time(write_txn& tx, std::uint64_t key_hash, std::string_view source, std::string_view id,
                 const dedupe_entry& entry) {
  detail::check_usable(tx);
  auto& buffer = detail::value_buffer(tx);
  encode(entry, id, buffer);
  std::string& key = detail::key_buffer(tx);
  make_time_key(key, entry.ts, key_hash, source, id);
  // Sorted per commit by the journal, so usually after the table's last key.
  detail::put_last(tx, tx.environment().dedupe_by_time(), key, std::string_view(buffer.data(), buffer.size()));
}

std::size_t drop_by_time_before(write_txn& tx, policies::timestamp cutoff, std::size_t max_entries) {
  const auto cut = static_cast<std::uint64_t>(std::max<std::int64_t>(0, cutoff.time_since_epoch().count()));
  return detail::erase_front_while(tx, tx.environment().dedupe_by_time(), max_entries, [cut](const MDB_val& k) {
    return k.mv_size >= 8 && detail::read_be64(static_cast<const char*>(k.mv_data)) < cut;
  });
}

std::optional<dedupe_entry> get(read_txn& tx, std::string_view source, std::string_view id,
                                policies::timestamp now, std::chrono::milliseconds window,
                                std::error_code& ec) {
  ec.clear();
  if (!tx) {
    ec = errc::txn_failed;
    return std::nullopt;
  }
  if (window < std::chrono::milliseconds::zero())
    return std::nullopt;
  const policies::timestamp oldest = now - window;
  const std::uint32_t first_day = day_of(oldest);
  const std::uint32_t last_day = day_of(now);
  std::string key;
  // Newest bucket first: a recent duplicate is the common case.
  for (std::uint32_t day = last_day;; --day) {
    make_key(key, day, source, id);
    auto value = detail::get(tx, tx.environment().dedupe(), key, ec);
    if (ec)
      return std::nullopt;
    if (value) {
      dedupe_entry entry;
      if ((ec = decode(detail::to_bytes(*value), id, entry)))
        return std::nullopt;
      if (entry.ts >= oldest)
        return entry;
    }
    if (day == first_day)
      break;
  }
  return std::nullopt;
}

void put(write_txn& tx, std::string_view source, std::string_view id, const dedupe_entry& entry) {
  detail::check_usable(tx);
  auto& buffer = detail::value_buffer(tx);
  encode(entry, id, buffer);
  std::string& key = detail::key_buffer(tx);
  make_key(key, day_of(entry.ts), source, id);
  detail::put(tx, tx.environment().dedupe(), key,
              std::string_view(buffer.data(), buffer.size()));
}

std::size_t drop_before(write_txn& tx, policies::timestamp cutoff, std::size_t max_entries) {
  // A bucket lies wholly before `cutoff` when its day is before cutoff's day.
  const std::uint32_t cutoff_day = day_of(cutoff);
  return detail::erase_front_while(tx, tx.environment().dedupe(), max_entries, [cutoff_day](const MDB_val& k) {
    return k.mv_size >= day_bytes && detail::read_be32(static_cast<const char*>(k.mv_data)) < cutoff_day;
  });
}

std::size_t erase_profile(write_txn& tx, std::string_view profile_id) {
  return erase_profiles(tx, {std::string(profile_id)});
}

std::size_t erase_profiles(write_txn& tx, const std::vector<std::string>& profile_ids) {
  return erase_named(tx, tx.environment().dedupe(), day_bytes, profile_ids) +
         erase_named(tx, tx.environment().dedupe_by_time(), time_key_bytes, profile_ids);
}

}  // namespace nudge::storage::dedupe_table
