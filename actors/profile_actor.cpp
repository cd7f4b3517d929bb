#include <list>
#include <optional>
#include <utility>

#include "actors/profile_actor.hpp"

#include "actors/clock.hpp"
#include "actors/context.hpp"
#include "actors/directory.hpp"
#include "actors/erasure.hpp"
#include "actors/ids.hpp"
#include "actors/journal.hpp"
#include "actors/outbox_service.hpp"
#include "actors/profile_logic.hpp"
#include "actors/schedule_logic.hpp"
#include "actors/shared_counters.hpp"
#include "actors/timer_service.hpp"
#include "actors/suppression_list.hpp"
#include "actors/type_ids.hpp"
#include "actors/wire.hpp"
#include "policies/json.hpp"
#include "policies/json_writer.hpp"
#include "policies/splitmix64.hpp"
#include "storage/audit_table.hpp"
#include "storage/dedupe_table.hpp"
#include "storage/env.hpp"
#include "storage/expiry_table.hpp"
#include "storage/journal_table.hpp"
#include "storage/profile_table.hpp"

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <random>

namespace nudge::actors {

namespace {

using policies::timestamp;
using json_writer = policies::json_writer;

/// Seeds per-actor generators without a random_device open per activation.
std::uint64_t seed_source() {
  thread_local std::mt19937_64 seeds{std::random_device{}()};
  return seeds();
}

struct profile_actor_state {
  static inline const char* name = "profile";

  context* ctx = nullptr;
  policies::profile_state profile;
  std::uint64_t seq = 0;
  std::uint64_t snapshot_seq = 0;
  bool loaded_ok = true;
  /// When the last message arrived; the idle check passivates after idle_passivate.
  std::chrono::steady_clock::time_point last_active = std::chrono::steady_clock::now();
  /// Replies of messages applied but not yet committed (source \0 id → JSON), oldest
  /// first; committed ones leave (the dedupe table answers for them), so an idle
  /// profile holds none.
  std::vector<recent_reply> recent;
  /// What the journal stored of this actor's records (the writer stores them).
  struct stored_marks {
    std::atomic<std::uint64_t> seq{0};     ///< the seq of the latest record committed
    stored_chunk_marks sealed;             ///< the latest committed snapshot's sealed_after()
  };
  /// Write records carry pointers into it (aliasing `stored`: one block, no copies).
  std::shared_ptr<stored_marks> stored = std::make_shared<stored_marks>();
  policies::splitmix64 rng{seed_source()};
  /// Live connections that sent messages for this profile (pushes go to them).
  std::vector<std::weak_ptr<reply_sink>> attached;
  /// Set once a merge took this profile's state: what still reaches it goes there.
  std::string merged_into;
  /// Erased: what still reaches the actor is handed on (ctx->redispatch), then it quits.
  bool erased = false;
  /// The directory asked it to leave (max_active) while messages waited: it passivates
  /// once they are handled.
  bool leave_when_idle = false;
  /// A record failed, so memory may be ahead of storage: until every record submitted
  /// so far has settled and storage is read again, messages wait in `stashed`.
  bool reloading = false;
  std::list<envelope_ptr> stashed;  // a list: free while empty (every actor has one), rarely used
  /// The due time last written to the expiry index: {} unknown (after activation),
  /// timestamp::max() none (the profile is not anonymous-only).
  timestamp expiry_written{};
};

using self_ptr = caf::stateful_actor<profile_actor_state>*;

void load(profile_actor_state& st, const std::string& id) {
  std::error_code ec;
  auto txn = st.ctx->env->read();
  // Nothing of this profile is in flight here (an activation follows its last
  // commit, a reload waits for a marker), so the index holds every entry the
  // transaction sees.
  auto positions = st.ctx->writer->index().positions(id);
  auto loaded = load_profile(txn, id, positions, st.ctx->options, now_ms(), ec);
  if (ec) {
    spdlog::error("profile {}: snapshot or journal unreadable: {}", id, ec.message());
    st.profile = {};
    st.profile.id = id;
    st.seq = st.snapshot_seq = 0;
    st.stored->sealed.store({});
    st.loaded_ok = false;
    return;
  }
  st.profile = std::move(loaded.state);
  st.seq = loaded.seq;
  st.snapshot_seq = loaded.snapshot_seq;
  st.stored->sealed.store(loaded.sealed);  // no record of it is in flight
  st.loaded_ok = true;
  // What the commits last put in the retention index, so that the first message after
  // an activation does not write it again (rewriting it cost a cold message a quarter
  // of its instructions). Unknown ({}), it is written again.
  st.expiry_written = {};
  if (st.ctx->options.anonymous_ttl.count() > 0) {
    std::error_code due_ec;
    auto due = storage::expiry_table::due_of(txn, id, due_ec);
    if (due_ec)
      return;
    if (due)
      st.expiry_written = *due;
    else if (!st.profile.identities.empty() && !anonymous_only(st.profile, st.ctx->options))
      st.expiry_written = timestamp::max();  // none, and none needed: a known identity stays
    // else {}: one without identities may yet become anonymous-only
  }
}

/// The replies' JSON is written here: one buffer per worker thread, not per profile
/// (a handler never suspends between writing and copying it out).
rapidjson::StringBuffer& reply_buffer() {
  thread_local rapidjson::StringBuffer buf;
  return buf;
}

/// A writer onto the thread's reply buffer, cleared. Kept per thread too: a new
/// writer allocates its nesting stack at its first object.
json_writer& reply_writer() {
  auto& buf = reply_buffer();
  buf.Clear();
  thread_local json_writer w;
  w.Reset(buf);
  return w;
}

/// What a decision's conditions read (API.md section 5, POLICY.md "the event being
/// decided has already been applied, so it counts"): the profile itself when both
/// `personalization` and `analytics` are granted. Otherwise a view of the current
/// message alone: a profile with the same id (the holdout's hash) whose history is the
/// event being decided (none for a `decide`), since without `analytics` that event was
/// not retained; with `personalization` the view also holds the profile's identities
/// (traits, stats and history are not kept without `analytics`). The caps, cooldowns
/// and contact policy count the profile's own decision log either way
/// (decide_request::limits). The view is one per thread, reused.
const policies::profile_state* decision_view(const profile_actor_state& st, bool personal, bool analytics,
                                             const policies::event_record* current) {
  if (personal && analytics)
    return &st.profile;
  thread_local policies::profile_state view;
  view.id.assign(st.profile.id);
  view.history.clear();
  view.memo.clear();  // it described another profile's events
  if (current)
    view.history.push_back(*current);
  if (personal)
    view.identities = st.profile.identities;
  else
    view.identities.clear();
  return &view;
}

/// Puts the profile's snapshot into `rec`, encoded (no copy of the state): the chunks
/// of its logs from the first not known stored full on (a snapshot still in
/// flight does not count: if it failed, this one writes what it would have).
void take_snapshot(profile_actor_state& st, write_record& rec) {
  rec.snapshot_encoded = storage::profile_table::encode(st.profile, st.seq, st.stored->sealed.load());
  rec.sealed = std::shared_ptr<stored_chunk_marks>(st.stored, &st.stored->sealed);
  rec.sealed_mark = storage::profile_table::sealed_after(st.profile);
  st.snapshot_seq = st.seq;
}

/// Drops the remembered replies whose records are committed.
void forget_committed(profile_actor_state& st) {
  const auto done = st.stored->seq.load(std::memory_order_acquire);
  auto keep = std::find_if(st.recent.begin(), st.recent.end(), [done](const recent_reply& r) { return r.seq > done; });
  st.recent.erase(st.recent.begin(), keep);
}

void remember(profile_actor_state& st, std::size_t hash, std::string key, const std::string& reply,
              std::uint64_t seq = ~std::uint64_t{0}) {
  forget_committed(st);
  // Bounded even while commits lag (a failing disk): the oldest then fall back to the
  // dedupe table, which holds them once they commit.
  if (st.recent.size() >= 64)
    st.recent.erase(st.recent.begin());
  st.recent.push_back({hash, std::move(key), reply, seq});
}

std::string dedupe_key(const inbound& m) {
  std::string k = m.source;
  k.push_back('\0');
  k += m.id;
  return k;
}

/// Answers `env` without changing anything, in commit order (so a duplicate's reply
/// never overtakes the commit of the message it repeats).
void reply_barrier(profile_actor_state& st, const envelope& env, std::string reply) {
  write_record rec;
  if (auto ticket = env.msg.resolution_ticket; ticket != 0)
    rec.on_done = [hook = st.ctx->on_resolution_settled, ticket](bool) {
      if (hook)
        hook(ticket);
    };
  rec.profile_id = st.profile.id;
  rec.sink = env.sink;
  rec.slot = env.slot;
  rec.format = env.format;
  rec.request_id = env.msg.id;
  rec.reply = std::move(reply);
  st.ctx->writer->submit_here(std::move(rec));
}

void reply_now(const envelope& env, std::string json, int status) {
  if (env.sink)
    env.sink->deliver(env.slot, encode_for(env.format, std::move(json)), status);
}

/// What the resolver reserved for a message that will write nothing of its own.
void settle_now(const profile_actor_state& st, const envelope& env) {
  if (env.msg.resolution_ticket != 0 && st.ctx->on_resolution_settled)
    st.ctx->on_resolution_settled(env.msg.resolution_ticket);
}

void write_decision_reply(profile_actor_state& st, const inbound& m, const policies::policy& pol,
                          const policies::decision& d, const std::string& decision_id, bool push = false) {
  json_writer& w = reply_writer();
  w.StartObject();
  w.Key("type"); w.String("decision");
  w.Key("id");
  if (push) {
    w.Null();
    w.Key("trigger");
    w.StartObject();
    bool fire = m.kind == message_kind::fire;
    w.Key("type"); w.String(fire ? "schedule" : "event");
    w.Key("id"); w.String(fire ? m.schedule_id : m.id);
    w.Key("name"); w.String(m.name);
    w.Key("channel"); w.String(m.channel);
    if (!fire) {
      w.Key("source"); w.String(m.source);
    }
    w.EndObject();
  } else {
    w.String(m.id);
  }
  w.Key("decision_id"); w.String(decision_id);
  w.Key("profile_id"); w.String(st.profile.id);
  auto version = pol.version();
  w.Key("policy_version"); w.String(version.data(), static_cast<rapidjson::SizeType>(version.size()));
  w.Key("actions");
  w.StartArray();
  for (const auto& a : d.actions) {
    w.StartObject();
    w.Key("action"); w.String(a.action.id.data(), static_cast<rapidjson::SizeType>(a.action.id.size()));
    w.Key("channel"); w.String(a.channel.data(), static_cast<rapidjson::SizeType>(a.channel.size()));
    w.Key("placement"); w.String(a.placement.data(), static_cast<rapidjson::SizeType>(a.placement.size()));
    w.Key("score"); policies::write_double(w, a.score);
    w.Key("payload");
    w.RawValue(a.action.payload_json.data(), a.action.payload_json.size(), rapidjson::kObjectType);
    w.EndObject();
  }
  w.EndArray();
  if (d.holdout) {
    w.Key("holdout"); w.Bool(true);
  }
  if (m.explain && !push) {
    w.Key("explain");
    w.StartObject();
    for (const auto& e : d.explain) {
      w.Key(e.action.data(), static_cast<rapidjson::SizeType>(e.action.size()));
      w.StartObject();
      w.Key("eligible"); w.Bool(e.why == policies::reason::eligible);
      if (e.why != policies::reason::eligible) {
        auto r = policies::to_string(e.why);
        w.Key("reason"); w.String(r.data(), static_cast<rapidjson::SizeType>(r.size()));
        if (!e.detail.empty()) {
          bool pointer = e.why == policies::reason::condition_false || e.why == policies::reason::suppressed;
          w.Key(pointer ? "pointer" : e.why == policies::reason::consent_missing ? "purpose" : "detail");
          w.String(e.detail);
        }
      }
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndObject();
}

void write_ack(profile_actor_state& st, const inbound& m) {
  json_writer& w = reply_writer();
  w.StartObject();
  w.Key("type"); w.String("ack");
  w.Key("id"); w.String(m.id);
  w.Key("profile_id"); w.String(st.profile.id);
  w.EndObject();
}

/// A message refused by the profile: nothing of it stays, not even the links the
/// resolver reserved for it, nor the actor of a profile that it would have created.
void refuse(self_ptr self, const envelope& env, std::string json) {
  auto& st = self->state;
  st.ctx->metrics.refused.fetch_add(1, std::memory_order_relaxed);
  settle_now(st, env);
  reply_now(env, std::move(json), 400);
  if (st.seq == 0 && st.profile.identities.empty() &&
      st.ctx->dir->remove_if_idle(st.profile.id, caf::actor{self}, [self] { return self->mailbox().empty(); }))
    self->quit();
}

void attach(profile_actor_state& st, const std::shared_ptr<reply_sink>& sink) {
  if (!sink || sink->push_channel().empty())
    return;
  // Most messages come from a connection already attached: compare owners without
  // locking, and sweep closed connections only when adding one.
  for (const auto& w : st.attached)
    if (!w.owner_before(sink) && !sink.owner_before(w))
      return;
  std::erase_if(st.attached, [](const auto& w) { return w.expired(); });
  if (st.attached.size() < 16)
    st.attached.push_back(sink);
}

/// An event that arrived on one channel may yield actions for the profile's live
/// connections on other channels: each such channel gets a decision of its own,
/// journaled like any decision (it counts as shown) and pushed after its commit.
void push_decisions(self_ptr self, const envelope& env, const policies::event_record& current,
                    const std::shared_ptr<const policies::policy>& pol, policies::timestamp now) {
  auto& st = self->state;
  auto* ctx = st.ctx;
  const auto& m = env.msg;
  std::vector<std::string> done;
  for (const auto& w : st.attached) {
    auto sink = w.lock();
    if (!sink || sink == env.sink)
      continue;
    std::string channel(sink->push_channel());
    if (channel == m.channel || std::find(done.begin(), done.end(), channel) != done.end())
      continue;
    done.push_back(channel);
    std::vector<std::shared_ptr<reply_sink>> targets;
    for (const auto& other : st.attached)
      if (auto t = other.lock(); t && t != env.sink && t->push_channel() == channel)
        targets.push_back(std::move(t));
    auto bits = consent_bits(st.profile, ctx->options, now);
    bool personal = consent_granted(st.profile, ctx->options, "personalization", now);
    bool analytics = consent_granted(st.profile, ctx->options, "analytics", now);
    auto counters = ctx->counters->view(pol);
    policies::decide_request req;
    req.profile = decision_view(st, personal, analytics, &current);
    req.limits = &st.profile;
    req.current = &current;
    req.channel = channel;
    req.now = now;
    req.consent = &bits;
    req.counters = counters.get();
    req.random_seed = st.rng();
    auto d = pol->decide(req);
    // The fallback alone is no reason to interrupt a connection.
    if (!worth_sending(d, *pol))
      continue;
    auto decision_id = new_id('d');
    auto rec = make_decision_record(*pol, d, decision_id, m.id, now, channel, "", ctx->options, bits, personal);
    apply_decision(st.profile, rec, ctx->options);
    ctx->counters->decided(d.holdout);
    write_decision_reply(st, m, *pol, d, decision_id, true);
    std::string json(reply_buffer().GetString(), reply_buffer().GetSize());
    storage::journal_entry entry;
    entry.seq = ++st.seq;
    entry.message_id = m.id + "#push:" + channel;
    entry.source = m.source;
    entry.received = now;
    entry.decision = std::move(rec);
    write_record wr;
    wr.profile_id = st.profile.id;
    wr.entry = std::move(entry);
    wr.on_done = [targets = std::move(targets), json = std::move(json)](bool ok) {
      if (ok)
        for (const auto& t : targets)
          t->push(json);
    };
    ctx->writer->submit_here(std::move(wr));
  }
}

/// A timer that fired but is no longer armed at that time (re-armed, cancelled,
/// fired before, or its schedule left the policy): only its index entry goes.
void drop_fire(profile_actor_state& st, const inbound& m) {
  write_record rec;
  rec.profile_id = st.profile.id;
  rec.timer_erases.push_back({m.due, st.profile.id, m.schedule_id});
  st.ctx->writer->submit_here(std::move(rec));
}

/// Adds to `rec` the timer index writes of its message (none without `timers_before`,
/// the timers before it when it changed them) and, for a firing whose
/// decision is worth sending (`decision_id` set), the outbox entries of the channel's
/// destinations (same commit); after the commit the timer service and the outbox
/// hear of them and the decision is pushed to every live connection of the profile.
void add_schedule_effects(profile_actor_state& st, write_record& rec, const inbound& m,
                          const std::vector<policies::armed_timer>* timers_before, const std::string& decision_id,
                          policies::timestamp now) {
  auto* ctx = st.ctx;
  if (timers_before)
    timer_writes(st.profile, *timers_before, rec.timer_erases, rec.timer_puts);
  std::vector<std::shared_ptr<reply_sink>> targets;
  if (!decision_id.empty()) {
    ctx->metrics.schedule_fires.fetch_add(1, std::memory_order_relaxed);
    std::string body;
    for (const auto* d : ctx->outbox ? ctx->outbox->destinations_for(m.channel) : std::vector<const destination*>{}) {
      if (body.empty() && !outbox_body(st.profile, m.channel, rec.reply, body)) {
        ctx->metrics.schedule_no_identity.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      rec.outbox_puts.push_back({st.profile.id, decision_id, d->id, now, body});
    }
    for (const auto& w : st.attached)
      if (auto t = w.lock())
        targets.push_back(std::move(t));
  }
  if (rec.timer_puts.empty() && rec.timer_erases.empty() && rec.outbox_puts.empty() && targets.empty())
    return;
  rec.on_done = [prev = std::move(rec.on_done), ctx, puts = rec.timer_puts, erases = rec.timer_erases,
                 outbox = rec.outbox_puts, targets = std::move(targets), json = rec.reply](bool ok) mutable {
    if (prev)
      prev(ok);
    if (!ok)
      return;
    if (ctx->timers)
      ctx->timers->armed(puts, erases);
    if (ctx->outbox && !outbox.empty())
      ctx->outbox->added(std::move(outbox));
    for (const auto& t : targets)
      t->push(json);
  };
}

bool is_admin_request(const inbound& m) {
  return m.admin || m.kind == message_kind::get_profile || m.kind == message_kind::export_profile ||
         m.kind == message_kind::audit_profile || m.kind == message_kind::erase_profile;
}

/// Retention: an anonymous-only profile has a due time in the expiry index no later
/// than anonymous_ttl past its latest message. It is written when the profile first
/// needs one and left as it is by later messages: the index may run early, never late.
/// The sweep that finds it due while the profile was in use since moves it (erase(),
/// below), about once per ttl, where moving it on every message a minute apart cost a
/// cold message four random updates of the index. A profile that is not
/// anonymous-only leaves the index.
void update_expiry(profile_actor_state& st, write_record& rec, timestamp now) {
  const auto& opt = st.ctx->options;
  if (opt.anonymous_ttl.count() <= 0)
    return;
  if (anonymous_only(st.profile, opt)) {
    if (st.expiry_written == timestamp{} || st.expiry_written == timestamp::max()) {  // unknown, or none
      st.expiry_written = now + opt.anonymous_ttl;
      rec.expiry_due = st.expiry_written;
    }
  } else if (st.expiry_written != timestamp::max()) {
    st.expiry_written = timestamp::max();
    rec.expiry_clear = true;
  }
}

/// DELETE /v1/profiles/{id} and retention's erasure of an idle anonymous profile:
/// one write record erases everything in one commit; the reply (counts) goes out
/// after it. From here on the id is tombstoned in the directory and its identities
/// resolve as unknown, so nothing stale is served and later messages start afresh.
void erase(self_ptr self, const envelope_ptr& env, timestamp now) {
  auto& st = self->state;
  auto* ctx = st.ctx;
  const auto& opt = ctx->options;
  const auto& m = env->msg;
  if (m.erase_reason == "anonymous_ttl") {
    bool due = opt.anonymous_ttl.count() > 0 && anonymous_only(st.profile, opt) &&
               now - st.profile.updated_at >= opt.anonymous_ttl;
    if (!due) {
      // Touched since it was indexed (or nothing is stored): only move the due time.
      write_record rec;
      rec.profile_id = st.profile.id;
      st.expiry_written = {};
      if (st.seq == 0 && st.profile.identities.empty())
        rec.expiry_clear = true;
      else
        update_expiry(st, rec, st.profile.updated_at);  // due: ttl after its latest message
      ctx->writer->submit_here(std::move(rec));
      return;
    }
  }
  auto req = std::make_shared<erasure_request>();
  req->profile_id = st.profile.id;
  req->identities = st.profile.identities;
  req->merged_from = st.profile.merged_from;
  if (m.suppress && ctx->suppression)
    for (const auto& id : req->identities)
      req->suppress_hashes.push_back(ctx->suppression->hash(id));
  req->erasure_id = new_id('x');
  req->reason = m.erase_reason.empty() ? "request" : m.erase_reason;
  req->ts = now;
  if (ctx->on_erasing)
    ctx->on_erasing(req->profile_id);
  ctx->dir->erased(req->profile_id, caf::actor{self});
  st.erased = true;
  st.profile = {};
  st.profile.id = req->profile_id;
  st.recent.clear();
  st.attached.clear();
  write_record rec;
  rec.profile_id = req->profile_id;
  rec.erase = req;
  rec.on_done = [req, sink = env->sink, slot = env->slot, format = env->format, ctx](bool ok) {
    if (!ok) {
      ctx->dir->erase_failed(req->profile_id);
      if (ctx->on_erase_failed)
        ctx->on_erase_failed(req->profile_id);
    }
    if (ok) {
      ctx->dir->erase_committed(req->profile_id);
      ctx->metrics.erasures.fetch_add(1, std::memory_order_relaxed);
      if (ctx->suppression)
        ctx->suppression->added(req->counts.suppressed);
    }
    if (sink)
      sink->deliver(slot,
                    encode_for(format, ok ? erasure_reply_json(*req)
                                          : http_error("internal", "the erasure could not be committed")),
                    ok ? 200 : 500);
  };
  ctx->writer->submit_here(std::move(rec));
}

void handle(self_ptr self, envelope_ptr env);

/// Takes a merged-away profile's state (API.md section 5, merge rules).
void absorb(self_ptr self, const handover& h, policies::timestamp now) {
  auto& st = self->state;
  merge_profiles(st.profile, h.state, st.ctx->options, now);
  for (const auto& r : h.recent)
    remember(st, r.hash, r.key, r.reply);
  for (const auto& w : h.attached)
    if (auto sink = w.lock())
      attach(st, sink);
}

/// Writes the merged state: the survivor's snapshot, and for each merged-away
/// profile its identities moved, an alias, its own state erased; all in one record
/// ahead of the message's own. If it does not commit, everyone reloads from storage.
void commit_merge(self_ptr self, const std::vector<std::string>& absorbed,
                  const std::vector<policies::identity>& moved, const std::string& message_id) {
  auto& st = self->state;
  auto* ctx = st.ctx;
  write_record rec;
  rec.profile_id = st.profile.id;
  take_snapshot(st, rec);
  rec.merged_away = absorbed;
  rec.audit.push_back({st.profile.id, now_ms(), "merge", merge_detail_json(st.profile.id, absorbed, moved, message_id)});
  rec.on_done = [dir = ctx->dir, absorbed, self_handle = caf::actor{self}](bool ok) {
    if (ok)
      return;
    for (const auto& id : absorbed)
      dir->unforward(id);
    caf::anon_send(self_handle, reload_atom_v);
  };
  // The united timers are indexed under the survivor (the merged-away ones are dropped).
  for (const auto& t : st.profile.timers)
    rec.timer_puts.push_back({t.due, st.profile.id, t.schedule_id});
  if (!rec.timer_puts.empty())
    rec.on_done = [prev = std::move(rec.on_done), ctx, puts = rec.timer_puts](bool ok) {
      if (ok && ctx->timers)
        ctx->timers->armed(puts, {});
      prev(ok);
    };
  ctx->writer->submit_here(std::move(rec));
  spdlog::info("profile {}: merged {} profile(s) into it", st.profile.id, absorbed.size());
}

/// Asks each profile of env->msg.merge_from in turn for its state (the mailbox
/// waits meanwhile, so later messages see the merged profile), then handles the
/// message itself. A profile that cannot hand over stays as it is.
void absorb_next(self_ptr self, envelope_ptr env, std::size_t i, std::vector<std::string> absorbed,
                 std::vector<policies::identity> moved) {
  auto& st = self->state;
  auto* ctx = st.ctx;
  if (i == env->msg.merge_from.size()) {
    if (!absorbed.empty())
      commit_merge(self, absorbed, moved, env->msg.id);
    env->msg.merge_from.clear();
    handle(self, std::move(env));
    return;
  }
  const auto loser = env->msg.merge_from[i];
  self->request(ctx->dir->actor_for(loser), std::chrono::seconds(10), handover_atom_v, st.profile.id)
    .await(
      [=](const handover_ptr& h) mutable {
        absorb(self, *h, now_ms());
        absorbed.push_back(loser);
        moved.insert(moved.end(), h->state.identities.begin(), h->state.identities.end());
        absorb_next(self, env, i + 1, std::move(absorbed), std::move(moved));
      },
      [=](caf::error& err) mutable {
        ctx->metrics.merges_failed.fetch_add(1, std::memory_order_relaxed);
        spdlog::error("profile {}: merging {} failed: {}", self->state.profile.id, loser, caf::to_string(err));
        absorb_next(self, env, i + 1, std::move(absorbed), std::move(moved));
      });
}

/// Refuses a feedback whose action the active policy lacks (API.md section 3); true
/// when it did.
bool refused_for_action(self_ptr self, const envelope& env) {
  const auto& m = env.msg;
  if (self->state.ctx->policy.get()->find_action(m.action) != static_cast<std::size_t>(-1))
    return false;
  refuse(self, env, error_reply(m.id, "invalid_message", "action is not an action of the active policy"));
  return true;
}

bool holds_decision(const policies::profile_state& p, std::string_view decision_id) {
  return std::any_of(p.decisions.begin(), p.decisions.end(),
                     [&](const auto& d) { return d.decision_id() == decision_id; });
}

/// Asks the profiles to merge, from the `i`-th on, whether one received the feedback's
/// decision_id; merges when one did, else refuses the feedback (nothing merged).
void ask_next_for_decision(self_ptr self, envelope_ptr env, std::size_t i) {
  auto& st = self->state;
  auto* ctx = st.ctx;
  const auto& m = env->msg;
  if (i == m.merge_from.size()) {
    refuse(self, *env, error_reply(m.id, "invalid_message", "decision_id is not a decision of this profile"));
    return;
  }
  self->request(ctx->dir->actor_for(m.merge_from[i]), std::chrono::seconds(10), has_decision_atom_v, m.decision_id)
    .await(
      [=](bool found) mutable {
        if (found)
          absorb_next(self, std::move(env), 0, {}, {});
        else
          ask_next_for_decision(self, std::move(env), i + 1);
      },
      [=](caf::error&) mutable { ask_next_for_decision(self, std::move(env), i + 1); });
}

/// A feedback that would merge profiles is checked first, so that one refused merges
/// nothing (API.md section 3: a bad message never changes state): its action must be
/// one of the active policy, and its decision_id (when given) one that the survivor or
/// one of the profiles to merge received (asked without giving up their state). True
/// when the check took the message (refused it, or asks on and merges later).
bool check_feedback_before_merge(self_ptr self, envelope_ptr& env) {
  auto& st = self->state;
  const auto& m = env->msg;
  if (m.kind != message_kind::feedback || m.merge_from.empty())
    return false;
  if (refused_for_action(self, *env))
    return true;
  if (m.decision_id.empty() || holds_decision(st.profile, m.decision_id))
    return false;
  ask_next_for_decision(self, std::move(env), 0);
  return true;
}

/// The loser's side of a merge: give up the state, leave the directory, forward
/// what is still queued, then stop.
caf::result<handover_ptr> hand_over(self_ptr self, const std::string& survivor) {
  auto& st = self->state;
  if (!st.merged_into.empty())
    return caf::make_error(caf::sec::runtime_error, "already merged");
  if (st.erased)
    return caf::make_error(caf::sec::runtime_error, "erased");
  if (!st.loaded_ok) {
    load(st, st.profile.id);
    if (!st.loaded_ok)
      return caf::make_error(caf::sec::runtime_error, "profile could not be loaded");
  }
  auto h = std::make_shared<handover>();
  auto id = st.profile.id;
  h->state = std::move(st.profile);
  h->recent = std::move(st.recent);
  h->attached = std::move(st.attached);
  st.profile = {};
  st.profile.id = id;
  st.recent.clear();
  st.attached.clear();
  st.merged_into = survivor;
  st.ctx->dir->forward(id, survivor, caf::actor{self});
  self->send(self, drain_atom_v);
  return handover_ptr{std::move(h)};
}

/// The journal asks for a snapshot (its oldest live entries are this profile's).
void checkpoint(self_ptr self) {
  auto& st = self->state;
  auto* ctx = st.ctx;
  if (st.reloading)
    return;  // its state holds what a failed commit did not store; the journal asks again
  if (!st.loaded_ok)
    load(st, st.profile.id);
  // A profile never stored has no entries to cover: writing one would create it.
  if (!st.loaded_ok || st.seq == 0)
    return;
  write_record rec;
  rec.profile_id = st.profile.id;
  take_snapshot(st, rec);
  rec.on_done = [self_handle = caf::actor{self}](bool ok) {
    if (!ok)
      caf::anon_send(self_handle, reload_atom_v);
  };
  ctx->writer->submit_here(std::move(rec));
}

void handle(self_ptr self, envelope_ptr env) {
  auto& st = self->state;
  auto* ctx = st.ctx;
  auto& m = env->msg;
  if (m.kind == message_kind::checkpoint) {
    if (st.merged_into.empty() && !st.erased)
      checkpoint(self);  // merged away or erased: its entries are covered already
    return;
  }
  if (!st.merged_into.empty()) {
    ctx->dir->dispatch(st.merged_into, std::move(env));
    return;
  }
  if (st.erased) {
    // Sent before the erasure: an operator's request finds nothing; a message is
    // resolved again, which now starts a new profile.
    if (is_admin_request(m)) {
      reply_now(*env, actors::http_error("not_found", "no such profile"), 404);
      return;
    }
    settle_now(st, *env);
    m.resolution_ticket = 0;
    m.identities_added.clear();
    m.merge_from.clear();
    m.given_up.clear();
    if (ctx->redispatch)
      ctx->redispatch(std::move(env));
    return;
  }
  auto arrived = std::chrono::steady_clock::now();
  if (!st.loaded_ok) {
    load(st, st.profile.id);
    if (!st.loaded_ok) {
      settle_now(st, *env);
      reply_now(*env, error_reply(m.id, "internal", "profile could not be loaded"), 500);
      return;
    }
  }
  if (!m.merge_from.empty()) {
    if (!check_feedback_before_merge(self, env))
      absorb_next(self, std::move(env), 0, {}, {});
    return;
  }
  auto now = now_ms();
  if (m.kind == message_kind::get_profile) {
    reply_now(*env, profile_json(st.profile, ctx->options, now), 200);
    return;
  }
  if (m.kind == message_kind::export_profile || m.kind == message_kind::audit_profile) {
    std::error_code ec;
    std::vector<storage::audit_record> audit;
    {
      auto txn = ctx->env->read();
      audit = storage::audit_table::read(txn, st.profile.id, ec);
    }
    if (ec) {
      reply_now(*env, actors::http_error("internal", "the audit trail could not be read"), 500);
      return;
    }
    reply_now(*env,
              m.kind == message_kind::export_profile ? export_json(st.profile, ctx->options, now, audit)
                                                     : audit_json(st.profile, audit),
              200);
    return;
  }
  if (m.kind == message_kind::erase_profile) {
    erase(self, env, now);
    return;
  }
  if (m.kind == message_kind::fire && !accept_fire(st.profile, *ctx->policy.get(), m)) {
    drop_fire(st, m);
    return;
  }
  ctx->metrics.messages.fetch_add(1, std::memory_order_relaxed);
  attach(st, env->sink);

  // Idempotency: the latest replies in memory, then the messages this profile has
  // seen (replies stored by time), then, past its bound, the replies stored by id.
  auto key = dedupe_key(m);
  const auto key_hash = std::hash<std::string>{}(key);
  for (auto it = st.recent.rbegin(); it != st.recent.rend(); ++it)
    if (it->hash == key_hash && it->key == key) {
      ctx->metrics.duplicates.fetch_add(1, std::memory_order_relaxed);
      reply_barrier(st, *env, mark_duplicate(it->reply));
      return;
    }
  const auto seen_hash = seen_key_hash(m.source, m.id);
  std::optional<storage::dedupe_entry> hit;
  {
    const auto oldest = now - ctx->options.dedupe_window;
    std::optional<storage::read_txn> txn;  // only when a lookup needs one
    std::error_code ec;
    const auto& seen = st.profile.seen;
    for (auto i = find_seen(seen, seen.size(), seen_hash, oldest); !hit && i != seen.size();
         i = find_seen(seen, i, seen_hash, oldest)) {
      if (!txn)
        txn.emplace(ctx->env->read());
      hit = storage::dedupe_table::get_by_time(*txn, seen[i].ts, seen_hash, m.source, m.id, ec);
    }
    if (!hit && now <= st.profile.seen_spill_until) {
      if (!txn)
        txn.emplace(ctx->env->read());
      hit = storage::dedupe_table::get(*txn, m.source, m.id, now, ctx->options.dedupe_window, ec);
    }
  }
  if (hit) {  // answered with no read transaction held (reply_barrier may commit here)
    ctx->metrics.duplicates.fetch_add(1, std::memory_order_relaxed);
    reply_barrier(st, *env, mark_duplicate(hit->reply));
    return;
  }

  auto pol = ctx->policy.get();
  const auto& opt = ctx->options;
  storage::journal_entry entry;
  entry.message_id = m.id;
  entry.source = m.source;
  entry.received = now;
  for (const auto& id : m.identities_added)
    if (std::find(st.profile.identities.begin(), st.profile.identities.end(), id) == st.profile.identities.end())
      entry.identities_added.push_back(id);
  bool analytics = consent_granted(st.profile, opt, "analytics", now);
  auto ts = m.ts.value_or(now);
  std::optional<policies::event_record> current;

  switch (m.kind) {
    case message_kind::event:
    case message_kind::fire:
      current = policies::event_record(m.id, m.name, ts, m.channel, m.properties);
      ctx->metrics.events.fetch_add(1, std::memory_order_relaxed);
      if (analytics) {
        entry.event = *current;
        entry.traits = m.traits;
        for (auto& t : entry.traits)
          t.ts = ts;
      }
      break;
    case message_kind::consent:
      for (const auto& c : m.consent)
        entry.consent.push_back({c.purpose, c.granted, ts, m.consent_source, c.expires});
      break;
    case message_kind::feedback: {
      if (refused_for_action(self, *env))
        return;
      if (!m.decision_id.empty() && !holds_decision(st.profile, m.decision_id)) {
        refuse(self, *env, error_reply(m.id, "invalid_message", "decision_id is not a decision of this profile"));
        return;
      }
      {
        // The group of the decision answered (or of the latest one) for holdout stats.
        bool holdout = !st.profile.decisions.empty() && st.profile.decisions.back().holdout();
        for (const auto& d : st.profile.decisions)
          if (!m.decision_id.empty() && d.decision_id() == m.decision_id)
            holdout = d.holdout();
        ctx->counters->feedback(m.action, m.outcome, holdout);
      }
      if (analytics) {
        const policies::property_view props[] = {{"action", std::string_view(m.action)},
                                                 {"decision_id", std::string_view(m.decision_id)}};
        entry.event = policies::event_record(m.id, "action_" + m.outcome, ts, m.channel,
                                             std::span(props, m.decision_id.empty() ? 1 : 2));
      }
      break;
    }
    case message_kind::decide:
    case message_kind::get_profile:
    case message_kind::export_profile:
    case message_kind::audit_profile:
    case message_kind::erase_profile:
    case message_kind::checkpoint:
      break;
  }
  entry.timers = timer_changes(st.profile, *pol, m, analytics, now);
  // The timers change only through entry.timers (apply_timer_changes): without any
  // change the index needs no writes, and the timers are not copied to find them.
  std::optional<std::vector<policies::armed_timer>> timers_before;
  if (!entry.timers.empty())
    timers_before = st.profile.timers;
  entry.seq = ++st.seq;
  // Every consent change stays in the audit trail (the profile keeps the latest).
  std::vector<storage::audit_record> audit;
  for (const auto& c : entry.consent)
    audit.push_back({st.profile.id, now, "consent", consent_detail_json(c)});
  for (const auto& id : m.given_up)
    audit.push_back({st.profile.id, now, "link_given_up", given_up_detail_json(id, m.id)});
  // Noted as seen: its reply then goes to the table by time.
  const bool seen_noted = apply_entry(st.profile, entry, opt, seen_hash);
  trim_history(st.profile, opt, now);
  std::string fire_decision_id;  // set when a firing's decision goes out

  std::string reply;
  if (m.kind == message_kind::event || m.kind == message_kind::decide || m.kind == message_kind::fire) {
    // Reused per thread: a message's decision is done with it before the next one.
    thread_local std::vector<bool> bits;
    consent_bits(st.profile, opt, now, bits);
    bool personal = consent_granted(st.profile, opt, "personalization", now);
    policies::decide_request req;
    req.profile = decision_view(st, personal, analytics, current ? &*current : nullptr);
    req.limits = &st.profile;
    req.current = current ? &*current : nullptr;
    req.channel = m.channel;
    req.placement = m.placement;
    req.now = now;
    req.consent = &bits;
    req.explain = m.explain;
    auto counters = ctx->counters->view(pol);
    req.counters = counters.get();
    req.random_seed = st.rng();
    auto d = pol->decide(req);
    auto decision_id = new_id('d');
    ctx->counters->decided(d.holdout);
    bool fire = m.kind == message_kind::fire;
    if (fire && worth_sending(d, *pol))
      fire_decision_id = decision_id;
    if (!d.actions.empty() && (!fire || !fire_decision_id.empty())) {
      auto rec = make_decision_record(*pol, d, decision_id, m.id, now, m.channel, m.placement, opt, bits, personal);
      apply_decision(st.profile, rec, opt);
      entry.decision = std::move(rec);
      ctx->metrics.decisions_with_actions.fetch_add(1, std::memory_order_relaxed);
      if (d.actions.size() == 1 && d.actions[0].action.index == pol->action_count())
        ctx->metrics.decisions_fallback.fetch_add(1, std::memory_order_relaxed);
    } else {
      ctx->metrics.decisions_empty.fetch_add(1, std::memory_order_relaxed);
    }
    if (d.holdout)
      ctx->metrics.decisions_holdout.fetch_add(1, std::memory_order_relaxed);
    write_decision_reply(st, m, *pol, d, decision_id, fire);
    ctx->metrics.decisions.fetch_add(1, std::memory_order_relaxed);
    auto took = std::chrono::steady_clock::now() - arrived;
    ctx->metrics.decision_latency.observe(took);
    ctx->metrics.decision_ns_total.fetch_add(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()),
      std::memory_order_relaxed);
  } else if (m.admin) {
    reply_buffer().Clear();
    for (char c : consent_state_json(st.profile, opt, now))
      reply_buffer().Put(c);
  } else {
    write_ack(st, m);
  }
  reply.assign(reply_buffer().GetString(), reply_buffer().GetSize());
  remember(st, key_hash, std::move(key), reply, st.seq);

  write_record rec;
  rec.profile_id = st.profile.id;
  rec.links = entry.identities_added;
  rec.dedupe = storage::dedupe_entry{now, {}, {}};
  rec.dedupe_lends = true;  // its profile id, reply and message id are the record's
  rec.dedupe_source = m.source;  // request_id too is the entry's message_id
  rec.dedupe_by_time = seen_noted;
  rec.dedupe_hash = seen_hash;
  rec.entry = std::move(entry);
  // A new profile's first record carries its snapshot, so that "profiles stored"
  // counts it and its activation after a restart reads one record.
  if (st.snapshot_seq == 0 || st.seq - st.snapshot_seq >= opt.snapshot_every) {
    take_snapshot(st, rec);
  }
  rec.audit = std::move(audit);
  update_expiry(st, rec, now);
  rec.sink = env->sink;
  rec.slot = env->slot;
  rec.format = env->format;
  rec.reply = std::move(reply);
  rec.committed = std::shared_ptr<std::atomic<std::uint64_t>>(st.stored, &st.stored->seq);
  rec.seq = st.seq;
  if (auto ticket = m.resolution_ticket; ticket != 0) {
    rec.on_done = [hook = ctx->on_resolution_settled, ticket, self_handle = caf::actor{self}](bool ok) {
      if (hook)
        hook(ticket);
      if (!ok)
        caf::anon_send(self_handle, reload_atom_v);
    };
  } else {
    rec.on_done = [self_handle = caf::actor{self}](bool ok) {
      if (!ok)
        caf::anon_send(self_handle, reload_atom_v);
    };
  }
  add_schedule_effects(st, rec, m, timers_before ? &*timers_before : nullptr, fire_decision_id, now);
  ctx->writer->submit_here(std::move(rec));
  if (current && !st.attached.empty() && m.kind != message_kind::fire)
    push_decisions(self, *env, *current, pol, now);
}

/// Persists and stops the actor unless a message is waiting; true when it stopped.
bool passivate(self_ptr self) {
  auto& st = self->state;
  auto* ctx = st.ctx;
  if (!st.merged_into.empty())
    return false;  // drain_atom stops it
  if (st.reloading || !st.stashed.empty())
    return false;  // its state is not settled yet; the idle sweep asks again
  if (!ctx->dir->remove_if_idle(st.profile.id, caf::actor{self}, [self] { return self->mailbox().empty(); }))
    return false;
  if (st.loaded_ok) {
    // The actor stops here: its state moves into the one copy that the directory
    // parks and the writer stores.
    auto snap = std::make_shared<const storage::profile_snapshot>(storage::profile_snapshot{std::move(st.profile), st.seq});
    const std::string& pid = snap->state.id;
    ctx->dir->park(pid, snap);
    write_record rec;
    rec.profile_id = pid;
    if (st.seq > st.snapshot_seq)
      rec.snapshot = snap;
    rec.on_done = [dir = ctx->dir, snap](bool) { dir->unpark(snap->state.id, snap.get()); };
    ctx->writer->submit_here(std::move(rec));
  }
  ctx->metrics.passivations.fetch_add(1, std::memory_order_relaxed);
  self->quit();
  return true;
}

/// What may follow a message or a settled reload: committed replies are forgotten, an
/// erased actor quits once nothing more waits, an actor asked to leave passivates.
void after_message(self_ptr self) {
  auto& st = self->state;
  // A record the actor committed itself (journal::submit_here) is durable by now: its
  // reply leaves memory at once instead of at the next message or idle sweep.
  forget_committed(st);
  if (st.reloading || !st.stashed.empty() || !self->mailbox().empty())
    return;
  // Erased and out of the directory: nothing new can arrive once this is empty.
  if (st.erased)
    self->quit();
  else if (st.leave_when_idle)
    passivate(self);
}

void apply(self_ptr self, envelope_ptr env) {
  self->state.last_active = std::chrono::steady_clock::now();
  handle(self, std::move(env));
  after_message(self);
}

caf::behavior profile_actor(self_ptr self, context* ctx, std::string id,
                            std::shared_ptr<const storage::profile_snapshot> parked) {
  self->state.ctx = ctx;
  if (parked) {
    // Journal entries behind this snapshot may still be pending: start from it.
    self->state.profile = parked->state;
    self->state.seq = self->state.snapshot_seq = parked->seq;
  } else {
    load(self->state, id);
  }
  ctx->metrics.activations.fetch_add(1, std::memory_order_relaxed);
  return {
    [=](apply_atom, envelope_ptr env) {
      if (self->state.reloading)
        self->state.stashed.push_back(std::move(env));
      else
        apply(self, std::move(env));
    },
    [=](handover_atom, const std::string& survivor) { return hand_over(self, survivor); },
    // A feedback that would merge this profile away asks first (check_feedback_before_merge).
    [=](has_decision_atom, const std::string& decision_id) {
      auto& st = self->state;
      if (!st.merged_into.empty() || st.erased)
        return false;
      if (!st.loaded_ok)
        load(st, st.profile.id);
      return st.loaded_ok && holds_decision(st.profile, decision_id);
    },
    [=](drain_atom) {
      if (!self->state.merged_into.empty())
        self->quit();
    },
    // A record failed. Reading storage at once would miss records submitted after it
    // that are still to commit (and then be acknowledged): the state would lose them
    // and the next snapshot would overwrite them. The writer settles records in
    // submission order, so a marker record submitted now settles after all of them.
    [=](reload_atom) {
      auto& st = self->state;
      if (st.erased || !st.merged_into.empty() || st.reloading)
        return;
      st.reloading = true;
      write_record marker;
      marker.marker = true;
      marker.profile_id = st.profile.id;
      marker.on_done = [self_handle = caf::actor{self}](bool) { caf::anon_send(self_handle, settled_atom_v); };
      ctx->writer->submit_here(std::move(marker));
    },
    [=](settled_atom) {
      auto& st = self->state;
      st.reloading = false;
      if (!st.erased && st.merged_into.empty()) {
        auto pid = st.profile.id;
        load(st, pid);
        st.recent.clear();
      }
      // Asked to leave while reloading (an eviction, or shutdown's passivate_all):
      // with nothing stashed, no apply below would passivate it.
      if (st.stashed.empty())
        after_message(self);
      // What waited, in arrival order, until a new failure stashes the rest again.
      while (!st.stashed.empty() && !st.reloading) {
        auto env = std::move(st.stashed.front());
        st.stashed.pop_front();
        apply(self, std::move(env));
      }
    },
    [=](passivate_atom) {
      if (!self->state.erased && !passivate(self))
        self->state.leave_when_idle = true;
    },
    // The directory's idle sweep asks actors it has not dispatched to for a while.
    [=](idle_atom) {
      if (self->state.erased) {
        self->quit();
        return;
      }
      forget_committed(self->state);
      if (self->state.recent.empty())
        self->state.recent.shrink_to_fit();
      if (std::chrono::steady_clock::now() - self->state.last_active >= ctx->options.idle_passivate)
        passivate(self);
    },
  };
}

}  // namespace

caf::actor spawn_profile(context& ctx, const std::string& profile_id,
                         std::shared_ptr<const storage::profile_snapshot> parked) {
  // Lazily: the actor starts with the message the directory sends it right after, on
  // the sender's execution unit (the I/O thread: net/io_unit.hpp). Spawned eagerly,
  // CAF's scheduler woke a worker to load the profile and the reply woke the I/O thread
  // back: three context switches per cold message, 26% of its CPU (docs/BENCHMARKS.md).
  return ctx.system->spawn<caf::lazy_init>(profile_actor, &ctx, profile_id, std::move(parked));
}

}  // namespace nudge::actors
