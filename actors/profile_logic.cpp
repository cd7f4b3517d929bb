#include "actors/profile_logic.hpp"

#include "actors/schedule_logic.hpp"
#include "policies/json.hpp"
#include "storage/profile_table.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <ctime>
#include <deque>
#include <iterator>
#include <unordered_set>

namespace nudge::actors {

namespace {

/// SHA-256 fetched once, and one digest context per thread (no allocation per hash).
EVP_MD_CTX* scratch_digest() {
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  return ctx.get();
}
const EVP_MD* sha256() {
  static const std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(EVP_MD_fetch(nullptr, "SHA256", nullptr), &EVP_MD_free);
  return md.get();
}

using policies::timestamp;

/// Drops the oldest records of `log` (oldest first) beyond `max`; returns how many.
template <class Log>
std::size_t keep_newest(Log& log, std::size_t max) {
  if (log.size() <= max)
    return 0;
  const std::size_t n = log.size() - max;
  log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(n));
  return n;
}

/// Drops the records of `log` (oldest first) older than `cutoff`; returns how many.
template <class Log>
std::size_t drop_before(Log& log, timestamp cutoff) {
  auto first_kept = std::find_if(log.begin(), log.end(), [cutoff](const auto& r) { return r.ts() >= cutoff; });
  const auto n = static_cast<std::size_t>(first_kept - log.begin());
  log.erase(log.begin(), first_kept);
  return n;
}

/// Empties the history; its next events start a new range of ordinals.
void clear_history(policies::profile_state& p) {
  p.history_base += p.history.size();
  p.history.clear();
}

/// Room for one more record in a log bounded by `max`: grows by a quarter (at least
/// 4), never past `max`, so that a profile's logs carry little unused capacity.
template <class T>
void make_room(T& log, std::size_t max) {
  if (log.size() == log.capacity() && log.size() < max)
    log.reserve(std::min(max, log.size() + std::max<std::size_t>(4, log.size() / 4)));
}

void add_stats(policies::lifetime_stats& s, const policies::event_record& ev) {
  if (s.events == 0 || ev.ts() < s.first_seen)
    s.first_seen = ev.ts();
  if (s.events == 0 || ev.ts() > s.last_seen)
    s.last_seen = ev.ts();
  ++s.events;
  const std::string_view name = ev.name();
  auto it = std::find_if(s.by_name.begin(), s.by_name.end(), [&](const auto& n) { return n.name == name; });
  if (it == s.by_name.end()) {
    // Exact growth: a profile sees a handful of event names, kept for its lifetime.
    s.by_name.reserve(s.by_name.size() + 1);
    s.by_name.push_back({std::string(name), 0, {}});
    it = std::prev(s.by_name.end());
  }
  ++it->count;
  for (std::size_t i = 0; i < ev.property_count(); ++i) {
    const auto prop = ev.property_at(i);
    const double* num = std::get_if<double>(&prop.value);
    if (!num)
      continue;
    auto sit = std::find_if(it->sums.begin(), it->sums.end(), [&](const auto& kv) { return kv.first == prop.path; });
    if (sit == it->sums.end()) {
      it->sums.reserve(it->sums.size() + 1);
      it->sums.emplace_back(prop.path, *num);
    }
    else
      sit->second += *num;
  }
}

void write_ts(rapidjson::Writer<rapidjson::StringBuffer>& w, timestamp ts) {
  auto ms = ts.time_since_epoch().count();
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = static_cast<int>(ms - static_cast<long long>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  w.String(buf, static_cast<rapidjson::SizeType>(n));
}

void write_scalar(rapidjson::Writer<rapidjson::StringBuffer>& w, const policies::scalar_view& v) {
  std::visit(
    [&](const auto& x) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, std::monostate>) w.Null();
      else if constexpr (std::is_same_v<T, bool>) w.Bool(x);
      else if constexpr (std::is_same_v<T, double>) policies::write_double(w, x);
      else w.String(x.data(), static_cast<rapidjson::SizeType>(x.size()));
    },
    v);
}

void write_scalar(rapidjson::Writer<rapidjson::StringBuffer>& w, const policies::scalar& v) {
  write_scalar(w, policies::view_of(v));
}

void write_string(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view v) {
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void write_event(rapidjson::Writer<rapidjson::StringBuffer>& w, const policies::event_record& e) {
  w.StartObject();
  w.Key("id"); write_string(w, e.id());
  w.Key("name"); write_string(w, e.name());
  w.Key("ts"); write_ts(w, e.ts());
  w.Key("channel"); write_string(w, e.channel());
  w.Key("properties");
  w.StartObject();
  for (std::size_t i = 0; i < e.property_count(); ++i) {
    const auto p = e.property_at(i);
    w.Key(p.path.data(), static_cast<rapidjson::SizeType>(p.path.size()));
    write_scalar(w, p.value);
  }
  w.EndObject();
  w.EndObject();
}

void write_identities(rapidjson::Writer<rapidjson::StringBuffer>& w, const policies::profile_state& p) {
  w.StartArray();
  for (const auto& id : p.identities) {
    w.StartObject();
    w.Key("type"); w.String(id.type);
    w.Key("value"); w.String(id.value);
    w.EndObject();
  }
  w.EndArray();
}

void write_decision(rapidjson::Writer<rapidjson::StringBuffer>& w, const policies::decision_record& d) {
  w.StartObject();
  w.Key("decision_id"); write_string(w, d.decision_id());
  w.Key("id"); write_string(w, d.request_id());
  w.Key("ts"); write_ts(w, d.ts());
  w.Key("channel"); write_string(w, d.channel());
  w.Key("placement"); write_string(w, d.placement());
  w.Key("policy_version"); write_string(w, d.policy_version());
  w.Key("holdout"); w.Bool(d.holdout());
  w.Key("actions");
  w.StartArray();
  for (std::size_t i = 0; i < d.action_count(); ++i) write_string(w, d.action(i).action);
  w.EndArray();
  w.Key("relied_on");
  w.StartArray();
  for (std::size_t i = 0; i < d.relied_on_count(); ++i) write_string(w, d.relied_on(i));
  w.EndArray();
  w.EndObject();
}

void write_audit_record(rapidjson::Writer<rapidjson::StringBuffer>& w, const storage::audit_record& r) {
  w.StartObject();
  w.Key("ts"); write_ts(w, r.ts);
  w.Key("kind"); w.String(r.kind);
  w.Key("detail");
  if (r.detail_json.empty())
    w.Null();
  else
    w.RawValue(r.detail_json.data(), r.detail_json.size(), rapidjson::kObjectType);
  w.EndObject();
}

/// The stored audit records and the kept decisions, merged by time.
void write_audit_records(rapidjson::Writer<rapidjson::StringBuffer>& w, const policies::profile_state& p,
                         const std::vector<storage::audit_record>& audit) {
  w.StartArray();
  std::size_t d = 0;
  for (std::size_t a = 0; a < audit.size() || d < p.decisions.size();) {
    if (d < p.decisions.size() && (a == audit.size() || p.decisions[d].ts() < audit[a].ts)) {
      const auto& dec = p.decisions[d++];
      w.StartObject();
      w.Key("ts"); write_ts(w, dec.ts());
      w.Key("kind"); w.String("decision");
      w.Key("detail"); write_decision(w, dec);
      w.EndObject();
    } else {
      write_audit_record(w, audit[a++]);
    }
  }
  w.EndArray();
}

}  // namespace

loaded_profile load_profile(storage::read_txn& txn, const std::string& id,
                            const std::vector<std::uint64_t>& journal_positions, const profile_options& opt,
                            policies::timestamp now, std::error_code& ec) {
  loaded_profile out;
  out.state.id = id;
  if (auto snap = storage::profile_table::get(txn, id, ec, &out.sealed)) {
    out.state = std::move(snap->state);
    out.seq = out.snapshot_seq = snap->seq;
  }
  if (ec)
    return out;
  for (auto position : journal_positions) {
    auto e = storage::journal_table::get(txn, position, id, ec);
    if (ec)
      return out;
    if (!e || e->seq <= out.seq)
      continue;  // dropped, or behind the snapshot
    apply_entry(out.state, *e, opt);
    if (e->decision)
      apply_decision(out.state, *e->decision, opt);
    out.seq = e->seq;
  }
  if (!ec)
    trim_history(out.state, opt, now);
  if (out.state.seen_spill_until == timestamp::max())  // a snapshot from before seen messages
    out.state.seen_spill_until = now + opt.dedupe_window;
  return out;
}

void trim_history(policies::profile_state& p, const profile_options& opt, policies::timestamp now) {
  p.history_base += drop_before(p.history, now - opt.history_max_age);
}

bool anonymous_only(const policies::profile_state& p, const profile_options& opt) {
  if (p.identities.empty())
    return false;
  for (const auto& id : p.identities)
    if (std::find(opt.anonymous_types.begin(), opt.anonymous_types.end(), id.type) == opt.anonymous_types.end())
      return false;
  return true;
}

void relied_on(const policies::decision& d, std::string_view channel, const profile_options& opt,
               const std::vector<bool>& bits, bool personal, std::vector<std::string_view>& out) {
  out.clear();
  auto add_if_granted = [&](std::string_view purpose) {
    for (std::size_t i = 0; i < opt.purposes.size() && i < bits.size(); ++i)
      if (opt.purposes[i] == purpose && bits[i] &&
          std::find(out.begin(), out.end(), purpose) == out.end())
        out.emplace_back(opt.purposes[i]);
  };
  if (personal)
    add_if_granted("personalization");
  for (const auto& a : d.actions) {
    for (const auto& purpose : a.action.required_purposes)
      add_if_granted(purpose);
    auto ch = a.channel.empty() ? channel : a.channel;
    if (ch == "email" || ch == "sms" || ch == "push")
      add_if_granted("marketing_" + std::string(ch));
  }
}

policies::decision_record make_decision_record(const policies::policy& pol, const policies::decision& d,
                                               std::string_view decision_id, std::string_view request_id,
                                               policies::timestamp now, std::string_view channel,
                                               std::string_view placement, const profile_options& opt,
                                               const std::vector<bool>& bits, bool personal) {
  thread_local std::vector<policies::shown_action> shown;  // reused per thread
  thread_local std::vector<std::string_view> purposes;
  shown.clear();
  for (const auto& a : d.actions)
    shown.push_back({a.action.id, a.channel, a.placement});
  relied_on(d, channel, opt, bits, personal, purposes);
  return {decision_id, request_id, now, channel, placement, pol.version(), shown, d.holdout, purposes};
}

std::string merge_detail_json(const std::string& survivor, const std::vector<std::string>& merged,
                              const std::vector<policies::identity>& identities, const std::string& message_id) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("survivor"); w.String(survivor);
  w.Key("merged_from");
  w.StartArray();
  for (const auto& m : merged) w.String(m);
  w.EndArray();
  w.Key("identities");
  w.StartArray();
  for (const auto& id : identities) {
    w.StartObject();
    w.Key("type"); w.String(id.type);
    w.Key("value"); w.String(id.value);
    w.EndObject();
  }
  w.EndArray();
  w.Key("message_id"); w.String(message_id);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string given_up_detail_json(const policies::identity& id, const std::string& message_id) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("type"); w.String(id.type);
  w.Key("message_id"); w.String(message_id);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string consent_detail_json(const policies::consent_record& c) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("purpose"); w.String(c.purpose);
  w.Key("state"); w.String(c.granted ? "granted" : "denied");
  w.Key("source"); w.String(c.source);
  w.Key("ts"); write_ts(w, c.ts);
  if (c.expires) { w.Key("expires"); write_ts(w, *c.expires); }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string audit_json(const policies::profile_state& p, const std::vector<storage::audit_record>& audit) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("profile_id"); w.String(p.id);
  w.Key("records");
  write_audit_records(w, p, audit);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string export_json(const policies::profile_state& p, const profile_options& opt, policies::timestamp now,
                        const std::vector<storage::audit_record>& audit) {
  auto profile = profile_json(p, opt, now);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("profile_id"); w.String(p.id);
  w.Key("profile"); w.RawValue(profile.data(), profile.size(), rapidjson::kObjectType);
  w.Key("identities");
  write_identities(w, p);
  w.Key("events");
  w.StartArray();
  for (const auto& e : p.history) write_event(w, e);
  w.EndArray();
  w.Key("decisions");
  w.StartArray();
  for (const auto& d : p.decisions) write_decision(w, d);
  w.EndArray();
  w.Key("consent_history");
  w.StartArray();
  for (const auto& r : audit)
    if (r.kind == "consent")
      write_audit_record(w, r);
  w.EndArray();
  w.Key("audit");
  write_audit_records(w, p, audit);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

bool consent_granted(const policies::profile_state& p, const profile_options& opt, std::string_view purpose,
                     policies::timestamp now) {
  for (const auto& c : p.consent)
    if (c.purpose == purpose) {
      if (c.expires && *c.expires <= now)
        break;
      return c.granted;
    }
  for (std::size_t i = 0; i < opt.purposes.size(); ++i)
    if (opt.purposes[i] == purpose)
      return opt.purpose_defaults[i];
  return false;
}

std::vector<bool> consent_bits(const policies::profile_state& p, const profile_options& opt, policies::timestamp now) {
  std::vector<bool> bits;
  consent_bits(p, opt, now, bits);
  return bits;
}

void consent_bits(const policies::profile_state& p, const profile_options& opt, policies::timestamp now,
                  std::vector<bool>& out) {
  out.assign(opt.purposes.size(), false);
  for (std::size_t i = 0; i < opt.purposes.size(); ++i)
    out[i] = consent_granted(p, opt, opt.purposes[i], now);
}

std::uint64_t seen_key_hash(std::string_view source, std::string_view id) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = scratch_digest();
  const char sep = '\0';
  if (ctx == nullptr || sha256() == nullptr || EVP_DigestInit_ex(ctx, sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, source.data(), source.size()) != 1 || EVP_DigestUpdate(ctx, &sep, 1) != 1 ||
      EVP_DigestUpdate(ctx, id.data(), id.size()) != 1 || EVP_DigestFinal_ex(ctx, md, &len) != 1 || len < 8)
    throw std::runtime_error("SHA-256 failed");
  std::uint64_t h = 0;
  for (int i = 0; i < 8; ++i)
    h = (h << 8) | md[i];
  return h;
}

bool note_seen(policies::profile_state& p, std::uint64_t key_hash, timestamp ts, const profile_options& opt) {
  auto& seen = p.seen;
  const auto cutoff = ts - opt.dedupe_window;
  auto first_kept = std::find_if(seen.begin(), seen.end(), [&](const policies::seen_message& m) { return m.ts >= cutoff; });
  p.seen_base += static_cast<std::uint64_t>(first_kept - seen.begin());
  seen.erase(seen.begin(), first_kept);
  if (seen.size() >= opt.dedupe_seen_max) {
    p.seen_spill_until = std::max(p.seen_spill_until, ts + opt.dedupe_window);
    return false;
  }
  make_room(seen, opt.dedupe_seen_max);  // grows by a quarter: memory per profile
  seen.push_back({key_hash, ts});
  return true;
}

std::size_t find_seen(const std::vector<policies::seen_message>& seen, std::size_t end, std::uint64_t key_hash,
                      timestamp oldest) noexcept {
  const policies::seen_message* s = seen.data();
  std::size_t i = std::min(end, seen.size());
  const auto match = [&](std::size_t k) { return s[k].key_hash == key_hash && s[k].ts >= oldest; };
  // Seen messages are in time order, so the window's entries are at the back: a block
  // whose oldest entry left the window is the last one looked at.
  for (; i >= 4 && s[i - 4].ts >= oldest; i -= 4)
    if ((s[i - 1].key_hash == key_hash) | (s[i - 2].key_hash == key_hash) | (s[i - 3].key_hash == key_hash) |
        (s[i - 4].key_hash == key_hash))
      for (std::size_t k = i; k-- > i - 4;)
        if (match(k))
          return k;
  for (; i > 0 && s[i - 1].ts >= oldest; --i)
    if (s[i - 1].key_hash == key_hash)
      return i - 1;
  return seen.size();
}

void apply_entry(policies::profile_state& p, const storage::journal_entry& e, const profile_options& opt) {
  apply_entry(p, e, opt, seen_key_hash(e.source, e.message_id));
}

bool apply_entry(policies::profile_state& p, const storage::journal_entry& e, const profile_options& opt,
                 std::uint64_t key_hash) {
  const bool noted = note_seen(p, key_hash, e.received, opt);
  if (p.created_at == timestamp{})
    p.created_at = e.received;
  p.updated_at = std::max(p.updated_at, e.received);
  for (const auto& id : e.identities_added)
    if (std::find(p.identities.begin(), p.identities.end(), id) == p.identities.end())
      p.identities.push_back(id);
  for (const auto& c : e.consent) {
    auto it = std::find_if(p.consent.begin(), p.consent.end(), [&](const auto& x) { return x.purpose == c.purpose; });
    if (it == p.consent.end())
      p.consent.push_back(c);
    else
      *it = c;
    // Withdrawing analytics purges what was retained of the profile's behaviour.
    if (c.purpose == "analytics" && !c.granted) {
      clear_history(p);
      p.stats = {};
      p.traits.clear();
    }
  }
  for (const auto& t : e.traits) {
    auto it = std::find_if(p.traits.begin(), p.traits.end(), [&](const auto& x) { return x.key == t.key; });
    if (it == p.traits.end())
      p.traits.push_back(t);
    else if (t.ts >= it->ts)
      *it = t;
  }
  if (e.event) {
    const auto& ev = *e.event;
    add_stats(p.stats, ev);
    // History stays in time order and keeps the newest history_max_events; a full log
    // drops its oldest without shifting the rest (policies/record_log.hpp). An event
    // older than everything kept in a full log would be dropped at once, so it is not
    // inserted.
    auto& history = p.history;
    const bool full = history.size() >= opt.history_max_events;
    if (!full || (!history.empty() && ev.ts() >= history.front().ts())) {
      if (full)
        p.history_base += keep_newest(history, opt.history_max_events - 1);
      make_room(history, opt.history_max_events);
      auto pos = std::upper_bound(history.begin(), history.end(), ev.ts(),
                                  [](timestamp ts, const auto& h) { return ts < h.ts(); });
      // One before the newest moves the newer ones: every ordinal changes, so the
      // history takes a new range (storage rewrites it whole, as before the chunks).
      if (pos != history.end())
        p.history_base += history.size();
      history.insert(pos, ev);
    }
    p.history_base += drop_before(history, e.received - opt.history_max_age);
  }
  apply_timer_changes(p, e.timers);
  return noted;
}

void apply_decision(policies::profile_state& p, const policies::decision_record& d, const profile_options& opt) {
  auto& kept = p.decisions;
  if (opt.decisions_max == 0) {
    p.decisions_base += kept.size();
    kept.clear();
    return;
  }
  if (kept.size() >= opt.decisions_max) {  // a full log drops its oldest (policies/record_log.hpp)
    p.decisions_base += kept.size() - (opt.decisions_max - 1);
    keep_newest(kept, opt.decisions_max - 1);
  }
  make_room(kept, opt.decisions_max);
  kept.push_back(d);
}

void merge_profiles(policies::profile_state& survivor, const policies::profile_state& loser,
                    const profile_options& opt, policies::timestamp now) {
  auto& s = survivor;
  if (loser.created_at != timestamp{} && (s.created_at == timestamp{} || loser.created_at < s.created_at))
    s.created_at = loser.created_at;
  s.updated_at = std::max({s.updated_at, loser.updated_at, now});
  for (const auto& id : loser.identities)
    if (std::find(s.identities.begin(), s.identities.end(), id) == s.identities.end())
      s.identities.push_back(id);
  for (const auto& m : loser.merged_from)
    if (std::find(s.merged_from.begin(), s.merged_from.end(), m) == s.merged_from.end())
      s.merged_from.push_back(m);
  if (std::find(s.merged_from.begin(), s.merged_from.end(), loser.id) == s.merged_from.end())
    s.merged_from.push_back(loser.id);

  for (const auto& t : loser.traits) {
    auto it = std::find_if(s.traits.begin(), s.traits.end(), [&](const auto& x) { return x.key == t.key; });
    if (it == s.traits.end())
      s.traits.push_back(t);
    else if (t.ts > it->ts)
      *it = t;
  }
  for (const auto& c : loser.consent) {
    auto it = std::find_if(s.consent.begin(), s.consent.end(), [&](const auto& x) { return x.purpose == c.purpose; });
    if (it == s.consent.end())
      s.consent.push_back(c);
    else if (c.ts > it->ts || (c.ts == it->ts && !c.granted))
      *it = c;
  }
  // Idempotency memory: both, in time order; the later spill bound.
  if (!loser.seen.empty()) {
    s.seen_base += s.seen.size();  // a new range: the merge reorders what was stored
    const auto mid = s.seen.insert(s.seen.end(), loser.seen.begin(), loser.seen.end());
    std::inplace_merge(s.seen.begin(), mid, s.seen.end(),
                       [](const policies::seen_message& a, const policies::seen_message& b) { return a.ts < b.ts; });
  }
  s.seen_spill_until = std::max(s.seen_spill_until, loser.seen_spill_until);
  // Timers: one per schedule; the later due (the more recent arming) wins.
  for (const auto& t : loser.timers) {
    auto it = std::find_if(s.timers.begin(), s.timers.end(), [&](const auto& x) { return x.schedule_id == t.schedule_id; });
    if (it == s.timers.end())
      s.timers.push_back(t);
    else if (t.due > it->due)
      *it = t;
  }

  auto& st = s.stats;
  const auto& ls = loser.stats;
  if (ls.events > 0) {
    st.first_seen = st.events == 0 ? ls.first_seen : std::min(st.first_seen, ls.first_seen);
    st.last_seen = std::max(st.last_seen, ls.last_seen);
    st.events += ls.events;
  }
  for (const auto& n : ls.by_name) {
    auto it = std::find_if(st.by_name.begin(), st.by_name.end(), [&](const auto& x) { return x.name == n.name; });
    if (it == st.by_name.end()) {
      st.by_name.push_back(n);
      continue;
    }
    it->count += n.count;
    for (const auto& [prop, sum] : n.sums) {
      auto p = std::find_if(it->sums.begin(), it->sums.end(), [&](const auto& x) { return x.first == prop; });
      if (p == it->sums.end())
        it->sums.emplace_back(prop, sum);
      else
        p->second += sum;
    }
  }

  // History: both are in time order; merge, then drop repeats of one message id.
  std::vector<policies::event_record> history;
  history.reserve(s.history.size() + loser.history.size());
  std::merge(s.history.begin(), s.history.end(), loser.history.begin(), loser.history.end(),
             std::back_inserter(history), [](const auto& a, const auto& b) { return a.ts() < b.ts(); });
  std::unordered_set<std::string_view> seen;  // views into `history`, which outlives the set
  std::vector<policies::event_record> unique;
  unique.reserve(history.size());
  for (auto& e : history) {
    if (!e.id().empty() && !seen.insert(e.id()).second)
      continue;
    unique.push_back(std::move(e));
  }
  keep_newest(unique, opt.history_max_events);
  drop_before(unique, now - opt.history_max_age);
  unique.shrink_to_fit();
  s.history_base += s.history.size();  // a new range, as the decision log below
  s.history = std::move(unique);

  // The log is rebuilt: its ordinals start a new range after the old one's.
  s.decisions_base += s.decisions.size();
  std::vector<policies::decision_record> decisions;
  decisions.reserve(s.decisions.size() + loser.decisions.size());
  std::merge(s.decisions.begin(), s.decisions.end(), loser.decisions.begin(), loser.decisions.end(),
             std::back_inserter(decisions), [](const auto& a, const auto& b) { return a.ts() < b.ts(); });
  s.decisions.clear();
  for (auto& d : decisions)
    if (std::none_of(s.decisions.begin(), s.decisions.end(),
                     [&](const auto& x) { return x.decision_id() == d.decision_id(); }))
      s.decisions.push_back(std::move(d));
  keep_newest(s.decisions, opt.decisions_max);
  s.decisions.shrink_to_fit();

  if (!consent_granted(s, opt, "analytics", now)) {
    clear_history(s);
    s.stats = {};
    s.traits.clear();
  }
}

static void write_consent(rapidjson::Writer<rapidjson::StringBuffer>& w, const policies::profile_state& p,
                   const profile_options& opt, policies::timestamp now) {
  w.StartObject();
  for (std::size_t i = 0; i < opt.purposes.size(); ++i) {
    const auto& purpose = opt.purposes[i];
    w.Key(purpose.data(), static_cast<rapidjson::SizeType>(purpose.size()));
    w.StartObject();
    w.Key("state"); w.String(consent_granted(p, opt, purpose, now) ? "granted" : "denied");
    for (const auto& c : p.consent)
      if (c.purpose == purpose) {
        w.Key("ts"); write_ts(w, c.ts);
        w.Key("source"); w.String(c.source);
        if (c.expires) { w.Key("expires"); write_ts(w, *c.expires); }
      }
    w.EndObject();
  }
  w.EndObject();
}

std::string consent_state_json(const policies::profile_state& p, const profile_options& opt, policies::timestamp now) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("profile_id"); w.String(p.id);
  w.Key("consent");
  write_consent(w, p, opt, now);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string profile_json(const policies::profile_state& p, const profile_options& opt, policies::timestamp now) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("profile_id"); w.String(p.id);
  w.Key("created_at"); write_ts(w, p.created_at);
  w.Key("updated_at"); write_ts(w, p.updated_at);
  w.Key("identities");
  write_identities(w, p);
  w.Key("merged_from");
  w.StartArray();
  for (const auto& m : p.merged_from) w.String(m);
  w.EndArray();
  w.Key("traits");
  w.StartObject();
  for (const auto& t : p.traits) {
    w.Key(t.key.data(), static_cast<rapidjson::SizeType>(t.key.size()));
    write_scalar(w, t.value);
  }
  w.EndObject();
  w.Key("consent");
  write_consent(w, p, opt, now);
  w.Key("stats");
  w.StartObject();
  w.Key("events"); w.Uint64(p.stats.events);
  if (p.stats.events > 0) {
    w.Key("first_seen"); write_ts(w, p.stats.first_seen);
    w.Key("last_seen"); write_ts(w, p.stats.last_seen);
  } else {
    w.Key("first_seen"); w.Null();
    w.Key("last_seen"); w.Null();
  }
  w.Key("by_name");
  w.StartObject();
  for (const auto& n : p.stats.by_name) {
    w.Key(n.name.data(), static_cast<rapidjson::SizeType>(n.name.size()));
    w.StartObject();
    w.Key("count"); w.Uint64(n.count);
    w.Key("sum");
    w.StartObject();
    for (const auto& [k, v] : n.sums) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); policies::write_double(w, v); }
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.Key("recent_events");
  w.StartArray();
  for (const auto& e : p.history) write_event(w, e);
  w.EndArray();
  w.Key("recent_decisions");
  w.StartArray();
  for (const auto& d : p.decisions) write_decision(w, d);
  w.EndArray();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace nudge::actors
