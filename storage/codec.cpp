#include "storage/codec.hpp"

#include "storage/detail/lmdb_ops.hpp"
#include "storage/reply_pack.hpp"

#include <limits>
#include <optional>
#include <string_view>

#include <msgpack.hpp>

namespace nudge::storage {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;
using msgpack::object;
namespace type = msgpack::type;

// A dedupe entry's fifth element: its reply is packed (reply_pack.hpp) in this format.
constexpr std::uint64_t reply_packing = 1;

// ---- encoding ----------------------------------------------------------------------

void pack_array(packer& p, std::size_t n) { p.pack_array(static_cast<std::uint32_t>(n)); }

void pack_str(packer& p, std::string_view s) {
  p.pack_str(static_cast<std::uint32_t>(s.size()));
  p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_bin(packer& p, std::string_view s) {
  p.pack_bin(static_cast<std::uint32_t>(s.size()));
  p.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_ts(packer& p, policies::timestamp ts) {
  p.pack_int64(static_cast<std::int64_t>(ts.time_since_epoch().count()));
}

void pack_scalar(packer& p, const policies::scalar_view& v) {
  if (const auto* b = std::get_if<bool>(&v))
    *b ? p.pack_true() : p.pack_false();
  else if (const auto* d = std::get_if<double>(&v))
    p.pack_double(*d);
  else if (const auto* s = std::get_if<std::string_view>(&v))
    pack_str(p, *s);
  else
    p.pack_nil();
}

void pack_scalar(packer& p, const policies::scalar& v) { pack_scalar(p, policies::view_of(v)); }

void pack_identity(packer& p, const policies::identity& i) {
  pack_array(p, 2);
  pack_str(p, i.type);
  pack_str(p, i.value);
}

void pack_trait(packer& p, const policies::trait& t) {
  pack_array(p, 3);
  pack_str(p, t.key);
  pack_scalar(p, t.value);
  pack_ts(p, t.ts);
}

void pack_event(packer& p, const policies::event_record& e) {
  pack_array(p, 5);
  pack_str(p, e.id());
  pack_str(p, e.name());
  pack_ts(p, e.ts());
  pack_str(p, e.channel());
  pack_array(p, e.property_count());
  for (std::size_t i = 0; i < e.property_count(); ++i) {
    const auto prop = e.property_at(i);
    pack_array(p, 2);
    pack_str(p, prop.path);
    pack_scalar(p, prop.value);
  }
}

void pack_decision(packer& p, const policies::decision_record& d) {
  pack_array(p, 9);
  pack_str(p, d.decision_id());
  pack_str(p, d.request_id());
  pack_ts(p, d.ts());
  pack_str(p, d.channel());
  pack_str(p, d.placement());
  pack_str(p, d.policy_version());
  pack_array(p, d.action_count());
  for (std::size_t i = 0; i < d.action_count(); ++i) {
    const auto a = d.action(i);
    pack_array(p, 3);
    pack_str(p, a.action);
    pack_str(p, a.channel);
    pack_str(p, a.placement);
  }
  d.holdout() ? p.pack_true() : p.pack_false();
  pack_array(p, d.relied_on_count());
  for (std::size_t i = 0; i < d.relied_on_count(); ++i)
    pack_str(p, d.relied_on(i));
}

void pack_consent(packer& p, const policies::consent_record& c) {
  pack_array(p, 5);
  pack_str(p, c.purpose);
  c.granted ? p.pack_true() : p.pack_false();
  pack_ts(p, c.ts);
  pack_str(p, c.source);
  if (c.expires)
    pack_ts(p, *c.expires);
  else
    p.pack_nil();
}

void pack_stats(packer& p, const policies::lifetime_stats& s) {
  pack_array(p, 4);
  p.pack_uint64(s.events);
  pack_ts(p, s.first_seen);
  pack_ts(p, s.last_seen);
  pack_array(p, s.by_name.size());
  for (const auto& n : s.by_name) {
    pack_array(p, 3);
    pack_str(p, n.name);
    p.pack_uint64(n.count);
    pack_array(p, n.sums.size());
    for (const auto& [key, sum] : n.sums) {
      pack_array(p, 2);
      pack_str(p, key);
      p.pack_double(sum);
    }
  }
}

template <class Range, class Pack>
void pack_each(packer& p, const Range& items, Pack pack_one) {
  pack_array(p, items.size());
  for (const auto& item : items)
    pack_one(p, item);
}

void pack_timer(packer& p, const policies::armed_timer& t) {
  pack_array(p, 3);
  pack_str(p, t.schedule_id);
  pack_ts(p, t.due);
  pack_str(p, t.message_id);
}

void pack_timer_change(packer& p, const timer_change& t) {
  pack_array(p, 3);
  pack_str(p, t.schedule_id);
  if (t.due)
    pack_ts(p, *t.due);
  else
    p.pack_nil();
  pack_str(p, t.message_id);
}

void pack_seen(packer& p, std::span<const policies::seen_message> seen) {
  // One binary run of 16-byte records (big-endian hash, then ms since the epoch):
  // a tenth of an array of pairs.
  // Written record by record into the output: a snapshot of a profile with its
  // thousands of seen ids holds no copy of them.
  p.pack_bin(static_cast<std::uint32_t>(seen.size() * 16));
  char record[16];
  for (const auto& m : seen) {
    detail::write_be64(record, m.key_hash);
    detail::write_be64(record + 8, static_cast<std::uint64_t>(m.ts.time_since_epoch().count()));
    p.pack_bin_body(record, sizeof record);
  }
}

/// The state; its decision log, history and seen messages inline, or (`logs_inline`
/// false) only where each starts and how long it is, their records in their chunks.
void pack_state(packer& p, const policies::profile_state& s, bool logs_inline, std::size_t seen_in_chunks = 0) {
  pack_array(p, logs_inline ? 14 : 19);
  pack_str(p, s.id);
  pack_ts(p, s.created_at);
  pack_ts(p, s.updated_at);
  pack_each(p, s.identities, pack_identity);
  pack_each(p, s.merged_from, [](packer& q, const std::string& id) { pack_str(q, id); });
  pack_each(p, s.traits, pack_trait);
  pack_stats(p, s.stats);
  if (logs_inline) {
    pack_each(p, s.history, pack_event);
    pack_each(p, s.decisions, pack_decision);
  } else {
    pack_array(p, 0);
    pack_array(p, 0);
  }
  pack_each(p, s.consent, pack_consent);
  pack_each(p, s.timers, pack_timer);
  seen_in_chunks = logs_inline ? 0 : std::min(seen_in_chunks, s.seen.size());
  pack_seen(p, std::span<const policies::seen_message>(s.seen).subspan(seen_in_chunks));
  pack_ts(p, s.seen_spill_until);
  p.pack_uint64(s.decisions_base);
  if (!logs_inline) {
    p.pack_uint64(s.decisions.size());
    p.pack_uint64(s.history_base);
    p.pack_uint64(s.history.size());
    p.pack_uint64(s.seen_base);
    p.pack_uint64(seen_in_chunks);
  }
}

// ---- decoding ----------------------------------------------------------------------
// Any mismatch throws bad_value (or msgpack throws); decode() turns both into corrupt.

struct bad_value {};

struct array_view {
  const object* items;
  std::uint32_t size;
  const object& operator[](std::uint32_t i) const { return items[i]; }
  const object* begin() const { return items; }
  const object* end() const { return items + size; }
};

array_view as_array(const object& o, std::uint32_t min_size) {
  if (o.type != type::ARRAY || o.via.array.size < min_size)
    throw bad_value{};
  return {o.via.array.ptr, o.via.array.size};
}

/// A string of the decoded message, valid while its zone lives.
std::string_view as_sv(const object& o) {
  if (o.type != type::STR)
    throw bad_value{};
  return {o.via.str.ptr, o.via.str.size};
}

void read(const object& o, std::string& out) { out.assign(as_sv(o)); }

void read_bytes(const object& o, std::string& out) {
  if (o.type == type::BIN)
    out.assign(o.via.bin.ptr, o.via.bin.size);
  else
    read(o, out);
}

std::uint64_t as_u64(const object& o) {
  if (o.type != type::POSITIVE_INTEGER)
    throw bad_value{};
  return o.via.u64;
}

std::int64_t as_i64(const object& o) {
  if (o.type == type::NEGATIVE_INTEGER)
    return o.via.i64;
  if (o.type == type::POSITIVE_INTEGER &&
      o.via.u64 <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(o.via.u64);
  throw bad_value{};
}

bool as_bool(const object& o) {
  if (o.type != type::BOOLEAN)
    throw bad_value{};
  return o.via.boolean;
}

double as_double(const object& o) {
  switch (o.type) {
    case type::FLOAT32:
    case type::FLOAT64:
      return o.via.f64;
    case type::POSITIVE_INTEGER:
      return static_cast<double>(o.via.u64);
    case type::NEGATIVE_INTEGER:
      return static_cast<double>(o.via.i64);
    default:
      throw bad_value{};
  }
}

policies::timestamp as_ts(const object& o) {
  return policies::timestamp{std::chrono::milliseconds{as_i64(o)}};
}

/// A scalar of the decoded message (a string is a view into its zone).
policies::scalar_view as_scalar_view(const object& o) {
  switch (o.type) {
    case type::NIL:
      return std::monostate{};
    case type::BOOLEAN:
      return o.via.boolean;
    case type::STR:
      return std::string_view(o.via.str.ptr, o.via.str.size);
    default:
      return as_double(o);
  }
}

void read(const object& o, policies::scalar& out) { out = policies::to_scalar(as_scalar_view(o)); }

void read(const object& o, policies::identity& out) {
  auto a = as_array(o, 2);
  read(a[0], out.type);
  read(a[1], out.value);
}

void read(const object& o, policies::trait& out) {
  auto a = as_array(o, 3);
  read(a[0], out.key);
  read(a[1], out.value);
  out.ts = as_ts(a[2]);
}

void read(const object& o, policies::armed_timer& out) {
  auto a = as_array(o, 3);
  read(a[0], out.schedule_id);
  out.due = as_ts(a[1]);
  read(a[2], out.message_id);
}

void read(const object& o, timer_change& out) {
  auto a = as_array(o, 3);
  read(a[0], out.schedule_id);
  if (a[1].type == type::NIL)
    out.due.reset();
  else
    out.due = as_ts(a[1]);
  read(a[2], out.message_id);
}

// Declared ahead so that read_all (a template) sees every overload.
void read(const object& o, policies::event_record& out);
void read(const object& o, policies::decision_record& out);
void read(const object& o, policies::consent_record& out);
void read(const object& o, std::pair<std::string, double>& out);
void read(const object& o, policies::name_stats& out);

template <class Container>
void read_all(const object& o, Container& out) {
  auto a = as_array(o, 0);
  out.clear();
  out.resize(a.size);
  std::uint32_t i = 0;
  for (auto& item : out)
    read(a[i++], item);
}

void read(const object& o, policies::event_record& out) {
  auto a = as_array(o, 5);
  auto props = as_array(a[4], 0);
  std::vector<policies::property_view> properties;
  properties.reserve(props.size);
  for (const auto& item : props) {
    auto f = as_array(item, 2);
    properties.push_back({as_sv(f[0]), as_scalar_view(f[1])});
  }
  out = policies::event_record(as_sv(a[0]), as_sv(a[1]), as_ts(a[2]), as_sv(a[3]), properties);
}

void read(const object& o, policies::decision_record& out) {
  auto a = as_array(o, 8);
  auto acts = as_array(a[6], 0);
  std::vector<policies::shown_action> actions;
  actions.reserve(acts.size);
  for (const auto& item : acts) {
    auto f = as_array(item, 3);
    actions.push_back({as_sv(f[0]), as_sv(f[1]), as_sv(f[2])});
  }
  std::vector<std::string_view> relied_on;
  if (a.size > 8)  // appended field: absent in records written before it existed
    for (const auto& item : as_array(a[8], 0))
      relied_on.push_back(as_sv(item));
  out = policies::decision_record(as_sv(a[0]), as_sv(a[1]), as_ts(a[2]), as_sv(a[3]), as_sv(a[4]), as_sv(a[5]),
                                  actions, as_bool(a[7]), relied_on);
}

void read(const object& o, policies::consent_record& out) {
  auto a = as_array(o, 5);
  read(a[0], out.purpose);
  out.granted = as_bool(a[1]);
  out.ts = as_ts(a[2]);
  read(a[3], out.source);
  if (a[4].type == type::NIL)
    out.expires.reset();
  else
    out.expires = as_ts(a[4]);
}

void read(const object& o, std::pair<std::string, double>& out) {
  auto a = as_array(o, 2);
  read(a[0], out.first);
  out.second = as_double(a[1]);
}

void read(const object& o, policies::name_stats& out) {
  auto a = as_array(o, 3);
  read(a[0], out.name);
  out.count = as_u64(a[1]);
  read_all(a[2], out.sums);
}

void read(const object& o, policies::lifetime_stats& out) {
  auto a = as_array(o, 4);
  out.events = as_u64(a[0]);
  out.first_seen = as_ts(a[1]);
  out.last_seen = as_ts(a[2]);
  read_all(a[3], out.by_name);
}

/// The binary run pack_seen() wrote.
void read_seen(const object& o, std::vector<policies::seen_message>& out) {
  if (o.type != type::BIN || o.via.bin.size % 16 != 0)
    throw bad_value{};
  const char* b = o.via.bin.ptr;
  out.resize(o.via.bin.size / 16);
  for (auto& m : out) {
    m.key_hash = detail::read_be64(b);
    m.ts = policies::timestamp(std::chrono::milliseconds(static_cast<std::int64_t>(detail::read_be64(b + 8))));
    b += 16;
  }
}

void read(const object& o, policies::profile_state& out) {
  auto a = as_array(o, 10);
  read(a[0], out.id);
  out.created_at = as_ts(a[1]);
  out.updated_at = as_ts(a[2]);
  read_all(a[3], out.identities);
  read_all(a[4], out.merged_from);
  read_all(a[5], out.traits);
  read(a[6], out.stats);
  read_all(a[7], out.history);
  read_all(a[8], out.decisions);
  read_all(a[9], out.consent);
  // Appended field: snapshots written before timers existed have none.
  if (a.size > 10)
    read_all(a[10], out.timers);
  else
    out.timers.clear();
  // Appended: snapshots written before the profile kept its seen messages have none;
  // their ids are in the dedupe table, keyed by id, for a whole window
  // (timestamp::max(): load_profile makes that now + the window).
  out.seen.clear();
  out.seen_base = 0;  // a core in chunks says where they start (decode())
  out.seen_spill_until = policies::timestamp::max();
  if (a.size > 12) {
    read_seen(a[11], out.seen);
    out.seen_spill_until = as_ts(a[12]);
  }
  // Appended: the decision log's first ordinal (0 before it was kept).
  out.decisions_base = a.size > 13 ? as_u64(a[13]) : 0;
}

template <class T>
void read_optional(const object& o, std::optional<T>& out) {
  if (o.type == type::NIL) {
    out.reset();
    return;
  }
  read(o, out.emplace());
}

/// The zone an unpack builds its objects in. Each msgpack::unpack without one mallocs
/// a new zone's first chunk (8 KiB) and frees it after: a cold profile's activation
/// decodes a dozen values (snapshot, log chunks, journal entries), and in a profile of
/// scenario 2's cold profiles malloc under msgpack::unpack held 5% of the samples
/// (docs/BENCHMARKS.md, "One msgpack zone per thread": ~1% of the instructions saved,
/// no CPU difference above the noise). So one zone per thread
/// is kept, with a first chunk of 64 KiB, and cleared after each value (clear() keeps
/// that chunk and frees any added); a decode inside another one's `body` gets its own
/// zone, since clearing the thread's would free the objects the outer one still reads.
class scratch_zone {
 public:
  scratch_zone() {
    auto& t = shared();
    if (!t.busy) {
      t.busy = true;
      zone_ = &t.zone;
    } else {
      own_.emplace();
      zone_ = &*own_;
    }
  }
  ~scratch_zone() {
    if (own_)
      return;
    auto& t = shared();
    t.zone.clear();
    t.busy = false;
  }
  scratch_zone(const scratch_zone&) = delete;
  scratch_zone& operator=(const scratch_zone&) = delete;

  msgpack::zone& get() noexcept { return *zone_; }

 private:
  struct thread_zone {
    msgpack::zone zone{64 * 1024};  // a whole chunk of 64 records fits: no chunk added
    bool busy = false;
  };
  static thread_zone& shared() {
    thread_local thread_zone t;
    return t;
  }
  msgpack::zone* zone_ = nullptr;
  std::optional<msgpack::zone> own_;
};

// Unpacks exactly one value and checks its schema version; `body` reads the fields.
template <class Body>
std::error_code decode_value(std::span<const std::byte> bytes, std::uint32_t min_fields,
                             Body body) {
  try {
    std::size_t offset = 0;
    scratch_zone zone;
    const msgpack::object value =
        msgpack::unpack(zone.get(), reinterpret_cast<const char*>(bytes.data()), bytes.size(), offset);
    if (offset != bytes.size())
      return errc::corrupt;
    auto a = as_array(value, min_fields + 1);
    if (as_u64(a[0]) != codec_version)
      return errc::corrupt;
    body(a);
    return {};
  } catch (...) {
    // msgpack's parse errors, bad_value, and bad_alloc on absurd sizes alike.
    return errc::corrupt;
  }
}

}  // namespace

void encode(const profile_snapshot& value, msgpack::sbuffer& out) {
  packer p(out);
  pack_array(p, 3);
  p.pack_uint64(codec_version);
  p.pack_uint64(value.seq);
  pack_state(p, value.state, true);
}

void encode_snapshot_core(const policies::profile_state& state, std::uint64_t seq, msgpack::sbuffer& out,
                          std::size_t seen_in_chunks) {
  packer p(out);
  pack_array(p, 3);
  p.pack_uint64(codec_version);
  p.pack_uint64(seq);
  pack_state(p, state, false, seen_in_chunks);
}

namespace {

/// A run of a log: [version, the first record's ordinal, [records]].
template <class Record, class Pack>
void encode_chunk(std::span<const Record> records, std::uint64_t first_ordinal, msgpack::sbuffer& out, Pack pack) {
  packer p(out);
  pack_array(p, 3);
  p.pack_uint64(codec_version);
  p.pack_uint64(first_ordinal);
  pack_array(p, static_cast<std::uint32_t>(records.size()));
  for (const auto& r : records)
    pack(p, r);
}

}  // namespace

void encode_decision_chunk(std::span<const policies::decision_record> decisions, std::uint64_t first_ordinal,
                           msgpack::sbuffer& out) {
  encode_chunk(decisions, first_ordinal, out, pack_decision);
}

void encode_event_chunk(std::span<const policies::event_record> events, std::uint64_t first_ordinal,
                        msgpack::sbuffer& out) {
  encode_chunk(events, first_ordinal, out, pack_event);
}

void encode_seen_chunk(std::span<const policies::seen_message> seen, std::uint64_t first_ordinal,
                       msgpack::sbuffer& out) {
  packer p(out);
  pack_array(p, 3);
  p.pack_uint64(codec_version);
  p.pack_uint64(first_ordinal);
  pack_seen(p, seen);
}

void encode(const journal_entry& value, msgpack::sbuffer& out) {
  packer p(out);
  pack_array(p, 11);
  p.pack_uint64(codec_version);
  p.pack_uint64(value.seq);
  pack_str(p, value.message_id);
  pack_str(p, value.source);
  pack_ts(p, value.received);
  if (value.event)
    pack_event(p, *value.event);
  else
    p.pack_nil();
  pack_each(p, value.traits, pack_trait);
  pack_each(p, value.identities_added, pack_identity);
  pack_each(p, value.consent, pack_consent);
  if (value.decision)
    pack_decision(p, *value.decision);
  else
    p.pack_nil();
  pack_each(p, value.timers, pack_timer_change);
}

void encode(const audit_record& value, msgpack::sbuffer& out) {
  packer p(out);
  pack_array(p, 4);
  p.pack_uint64(codec_version);
  pack_ts(p, value.ts);
  pack_str(p, value.kind);
  pack_str(p, value.detail_json);
}

void encode(const dedupe_entry& value, std::string_view message_id, msgpack::sbuffer& out) {
  // Reused per thread: the writer packs every accepted message's reply.
  thread_local std::string packed;
  const bool is_packed = pack_reply(value.reply, message_id, value.profile_id, packed);
  packer p(out);
  pack_array(p, is_packed ? 5 : 4);
  p.pack_uint64(codec_version);
  pack_ts(p, value.ts);
  pack_str(p, value.profile_id);
  pack_bin(p, is_packed ? std::string_view(packed) : std::string_view(value.reply));
  if (is_packed)
    p.pack_uint64(reply_packing);
}

void encode(const outbox_entry& value, msgpack::sbuffer& out) {
  packer p(out);
  pack_array(p, 5);
  p.pack_uint64(codec_version);
  pack_ts(p, value.created);
  pack_bin(p, value.body);
  p.pack_uint32(value.attempts);
  pack_ts(p, value.next_attempt);
}

std::error_code decode(std::span<const std::byte> bytes, outbox_entry& out) {
  return decode_value(bytes, 2, [&](const array_view& a) {
    out.created = as_ts(a[1]);
    read_bytes(a[2], out.body);
    // Entries written before attempts were stored have three fields.
    out.attempts = a.size > 3 ? static_cast<std::uint32_t>(std::min<std::uint64_t>(as_u64(a[3]), std::numeric_limits<std::uint32_t>::max())) : 0;
    // ... and those written before the backoff was stored, four: due at once.
    out.next_attempt = a.size > 4 ? as_ts(a[4]) : policies::timestamp{};
  });
}

std::error_code decode(std::span<const std::byte> bytes, profile_snapshot& out) {
  chunked_logs in_chunks;
  if (auto ec = decode(bytes, out, in_chunks))
    return ec;
  // A core whose records live in chunks is not a whole snapshot on its own.
  if (in_chunks.decisions.value_or(0) > 0 || in_chunks.history.value_or(0) > 0 || in_chunks.seen.value_or(0) > 0)
    return errc::corrupt;
  return {};
}

namespace {

/// Reads fields 0 (the schema version) and 1 (the seq) of a snapshot's top-level
/// array as msgpack's parser visits them; every other value is skipped.
struct seq_visitor : msgpack::null_visitor {
  std::uint32_t depth = 0;  // arrays and maps open around the current value
  std::uint32_t field = 0;  // index of the current field of the top-level array
  std::uint32_t fields = 0;
  bool top_is_array = false;
  std::optional<std::uint64_t> version;
  std::optional<std::uint64_t> seq;

  bool visit_positive_integer(std::uint64_t v) {
    if (depth == 1 && field == 0)
      version = v;
    else if (depth == 1 && field == 1)
      seq = v;
    return true;
  }
  bool start_array(std::uint32_t n) {
    if (depth++ == 0) {
      top_is_array = true;
      fields = n;
    }
    return true;
  }
  bool end_array() {
    --depth;
    return true;
  }
  bool end_array_item() {
    if (depth == 1)
      ++field;
    return true;
  }
  bool start_map(std::uint32_t) {
    ++depth;
    return true;
  }
  bool end_map() {
    --depth;
    return true;
  }
};

}  // namespace

std::error_code decode_seq(std::span<const std::byte> bytes, std::uint64_t& seq) {
  seq_visitor v;
  std::size_t offset = 0;
  try {
    if (!msgpack::parse(reinterpret_cast<const char*>(bytes.data()), bytes.size(), offset, v) ||
        offset != bytes.size())
      return errc::corrupt;
  } catch (...) {
    return errc::corrupt;  // msgpack's size limits, as in decode_value
  }
  if (!v.top_is_array || v.fields < 3 || v.version != codec_version || !v.seq)
    return errc::corrupt;
  seq = *v.seq;
  return {};
}

std::error_code decode(std::span<const std::byte> bytes, profile_snapshot& out, chunked_logs& in_chunks) {
  return decode_value(bytes, 2, [&](const array_view& a) {
    out.seq = as_u64(a[1]);
    read(a[2], out.state);
    // A state of 15 fields keeps its decision log in chunks (field 14: its length);
    // one of 17 its history too (15: where it starts, 16: its length); one of 19 the
    // first of its seen messages too (17: where they start, 18: how many are in
    // chunks; field 11 holds those after them).
    const auto s = as_array(a[2], 10);
    in_chunks = {};
    if (s.size > 14)
      in_chunks.decisions = as_u64(s[14]);
    if (s.size > 16) {
      out.state.history_base = as_u64(s[15]);
      in_chunks.history = as_u64(s[16]);
    } else {
      out.state.history_base = 0;
    }
    if (s.size > 18) {
      out.state.seen_base = as_u64(s[17]);
      in_chunks.seen = as_u64(s[18]);
    } else {
      out.state.seen_base = 0;
    }
  });
}

namespace {

/// The run encode_chunk() wrote.
template <class Record>
std::error_code decode_chunk(std::span<const std::byte> bytes, std::uint64_t& first_ordinal,
                             std::vector<Record>& out) {
  return decode_value(bytes, 2, [&](const array_view& a) {
    first_ordinal = as_u64(a[1]);
    read_all(a[2], out);
  });
}

}  // namespace

std::error_code decode_decision_chunk(std::span<const std::byte> bytes, std::uint64_t& first_ordinal,
                                      std::vector<policies::decision_record>& out) {
  return decode_chunk(bytes, first_ordinal, out);
}

std::error_code decode_event_chunk(std::span<const std::byte> bytes, std::uint64_t& first_ordinal,
                                   std::vector<policies::event_record>& out) {
  return decode_chunk(bytes, first_ordinal, out);
}

std::error_code decode_seen_chunk(std::span<const std::byte> bytes, std::uint64_t& first_ordinal,
                                  std::vector<policies::seen_message>& out) {
  return decode_value(bytes, 2, [&](const array_view& a) {
    first_ordinal = as_u64(a[1]);
    read_seen(a[2], out);
  });
}

std::error_code decode(std::span<const std::byte> bytes, journal_entry& out) {
  return decode_value(bytes, 9, [&](const array_view& a) {
    out.seq = as_u64(a[1]);
    read(a[2], out.message_id);
    read(a[3], out.source);
    out.received = as_ts(a[4]);
    read_optional(a[5], out.event);
    read_all(a[6], out.traits);
    read_all(a[7], out.identities_added);
    read_all(a[8], out.consent);
    read_optional(a[9], out.decision);
    if (a.size > 10)
      read_all(a[10], out.timers);
    else
      out.timers.clear();
  });
}

std::error_code decode(std::span<const std::byte> bytes, audit_record& out) {
  return decode_value(bytes, 3, [&](const array_view& a) {
    out.ts = as_ts(a[1]);
    read(a[2], out.kind);
    read(a[3], out.detail_json);
  });
}

std::error_code decode(std::span<const std::byte> bytes, std::string_view message_id, dedupe_entry& out) {
  return decode_value(bytes, 3, [&](const array_view& a) {
    out.ts = as_ts(a[1]);
    read(a[2], out.profile_id);
    if (a.size < 5) {
      read_bytes(a[3], out.reply);
      return;
    }
    if (as_u64(a[4]) != reply_packing || a[3].type != type::BIN ||
        !unpack_reply({a[3].via.bin.ptr, a[3].via.bin.size}, message_id, out.profile_id, out.reply))
      throw bad_value{};
  });
}

}  // namespace nudge::storage
