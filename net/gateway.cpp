#include <utility>

#include "net/gateway.hpp"

#include "actors/directory.hpp"
#include "actors/journal.hpp"
#include "actors/outbox_service.hpp"
#include "actors/timer_service.hpp"
#include "actors/shared_counters.hpp"
#include "actors/suppression_list.hpp"
#include "actors/wire.hpp"
#include "storage/env.hpp"
#include "storage/journal_table.hpp"
#include "storage/profile_table.hpp"

#include <openssl/crypto.h>

#include <sstream>

namespace nudge::net {

namespace {

bool equal_ct(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty())
    return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

thread_local actors::reply_lane* this_threads_lane = nullptr;

}  // namespace

actors::reply_lane* gateway::lane_here() noexcept {
  return this_threads_lane;
}

void gateway::set_lane_here(actors::reply_lane* lane) noexcept {
  this_threads_lane = lane;
}

const stream_source* gateway::source_for_key(std::string_view key) const {
  const stream_source* found = nullptr;
  for (const auto& s : opts_.sources)  // no early exit: the time does not depend on which key
    if (equal_ct(s.write_key, key))
      found = &s;
  return found;
}

bool gateway::is_admin(std::string_view token) const {
  return equal_ct(opts_.admin_token, token);
}

bool gateway::take_address_slot(const std::string& address, address_slot& slot) {
  slot.reset();
  if (opts_.max_connections_per_address == 0)
    return true;
  {
    std::lock_guard<std::mutex> guard(addresses_mtx_);
    auto& n = addresses_[address];
    if (n >= opts_.max_connections_per_address)
      return false;
    ++n;
  }
  // No object: the deleter alone gives the place back.
  slot = address_slot(nullptr, [this, address](void*) {
    std::lock_guard<std::mutex> guard(addresses_mtx_);
    if (auto it = addresses_.find(address); it != addresses_.end() && --it->second == 0)
      addresses_.erase(it);
  });
  return true;
}

void gateway::dispatch(actors::envelope_ptr env, route_cache* cache) {
  auto& m = env->msg;
  if (cache && !cache->profile_id.empty() && cache->generation == resolver_.generation() && m.identities == cache->ids) {
    m.identities_added = cache->added;
    dispatch_to(cache->profile_id, std::move(env));
    return;
  }
  // A suppressed identity is answered here, before anything is resolved or created;
  // a cached resolution never holds one (an erasure bumps the generation).
  if (answer_if_suppressed(env))
    return;
  // Read before resolving: a merge that this very resolution makes bumps it, and
  // then the next message resolves again (and finds the merge settled).
  auto generation = resolver_.generation();
  auto res = resolver_.resolve(m.identities);
  if (cache) {
    bool plain = res.merged.empty() && res.given_up.empty();
    cache->ids = m.identities;
    cache->profile_id = plain ? res.profile_id : std::string();
    cache->added = res.added;
    cache->generation = generation;
  }
  m.identities_added = std::move(res.added);
  m.merge_from = std::move(res.merged);
  m.given_up = std::move(res.given_up);
  m.resolution_ticket = res.ticket;
  dispatch_to(res.profile_id, std::move(env));
}

void gateway::dispatch_to(const std::string& profile_id, actors::envelope_ptr env) {
  ctx_.dir->dispatch(profile_id, std::move(env));
}

bool gateway::profile_exists(const std::string& profile_id) {
  std::error_code ec;
  auto txn = ctx_.env->read();
  // A profile's first record carries its snapshot.
  return storage::profile_table::get(txn, profile_id, ec).has_value();
}

void gateway::schedule_stats(std::ostream& o) const {
  auto os = ctx_.outbox ? ctx_.outbox->stats() : actors::outbox_stats{};
  auto ts = ctx_.timers ? ctx_.timers->stats() : actors::timer_stats{};
  o << "\"timers\":{\"armed\":" << ctx_.env->entries(ctx_.env->timers()) << ",\"fired\":" << ts.fired
    << ",\"decisions_sent\":" << ctx_.metrics.schedule_fires.load()
    << ",\"no_identity\":" << ctx_.metrics.schedule_no_identity.load() << "},\"outbox\":{\"backlog\":" << os.pending
    << ",\"failed\":" << os.failed << ",\"delivered\":" << os.delivered << ",\"attempts\":" << os.attempts
    << ",\"retries\":" << os.retries << ",\"in_flight\":" << os.in_flight << "}";
}

bool gateway::answer_if_suppressed(const actors::envelope_ptr& env) {
  auto* list = ctx_.suppression;
  if (!list || !list->contains_any(env->msg.identities))
    return false;
  ctx_.metrics.suppressed.fetch_add(1, std::memory_order_relaxed);
  const auto& m = env->msg;
  bool decision = m.kind == actors::message_kind::event || m.kind == actors::message_kind::decide;
  if (env->sink)
    env->sink->deliver(env->slot, actors::encode_for(env->format, actors::suppressed_reply(m.id, decision)), 200);
  return true;
}

void gateway::redispatch(actors::envelope_ptr env) {
  const auto& m = env->msg;
  bool admin = m.admin || m.kind == actors::message_kind::get_profile || m.kind == actors::message_kind::export_profile ||
               m.kind == actors::message_kind::audit_profile || m.kind == actors::message_kind::erase_profile;
  if (admin || m.identities.empty()) {
    if (env->sink)
      env->sink->deliver(env->slot, actors::http_error("not_found", "no such profile"), 404);
    return;
  }
  dispatch(std::move(env));
}

std::optional<std::string> gateway::find_profile(const std::string& id) {
  if (id.empty() || id.find('/') != std::string::npos)
    return std::nullopt;
  auto resolved = resolver_.canonical(id);
  if (profile_exists(resolved) || ctx_.dir->is_active(resolved))
    return resolved;
  return std::nullopt;
}

std::string gateway::metrics_text() const {
  const auto& m = ctx_.metrics;
  auto js = ctx_.writer->stats();
  std::ostringstream o;
  auto header = [&](const char* name, const char* help, const char* type) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  auto counter = [&](const char* name, const char* help, std::uint64_t v, const char* type = "counter") {
    header(name, help, type);
    o << name << ' ' << v << '\n';
  };
  auto load = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  // Outcomes: each applied message is exactly one of applied (incl. refused ones
  // never count here), duplicate; refused and suppressed are answered before.
  header("nudge_messages_by_outcome_total", "Messages by outcome.", "counter");
  o << "nudge_messages_by_outcome_total{outcome=\"applied\"} "
    << load(m.messages) - std::min(load(m.messages), load(m.duplicates) + load(m.refused)) << '\n'
    << "nudge_messages_by_outcome_total{outcome=\"duplicate\"} " << load(m.duplicates) << '\n'
    << "nudge_messages_by_outcome_total{outcome=\"refused\"} " << load(m.refused) << '\n'
    << "nudge_messages_by_outcome_total{outcome=\"suppressed\"} " << load(m.suppressed) << '\n';
  header("nudge_decisions_by_outcome_total", "Decisions by outcome (holdout decisions also count as theirs).", "counter");
  auto decisions = load(m.decisions);
  auto with_actions = load(m.decisions_with_actions);
  auto fallback = load(m.decisions_fallback);
  o << "nudge_decisions_by_outcome_total{outcome=\"actions\"} " << with_actions - std::min(with_actions, fallback) << '\n'
    << "nudge_decisions_by_outcome_total{outcome=\"fallback\"} " << fallback << '\n'
    << "nudge_decisions_by_outcome_total{outcome=\"empty\"} " << load(m.decisions_empty) << '\n'
    << "nudge_decisions_by_outcome_total{outcome=\"holdout\"} " << load(m.decisions_holdout) << '\n';
  o << m.decision_latency.prometheus("nudge_decision_latency_seconds",
                                     "Time from a message reaching its profile actor to its decision.");
  counter("nudge_messages_total", "Messages applied by profile actors.", load(m.messages));
  counter("nudge_events_total", "Events applied.", load(m.events));
  counter("nudge_decisions_total", "Decisions made.", decisions);
  counter("nudge_decisions_with_actions_total", "Decisions that returned at least one action.", with_actions);
  counter("nudge_duplicates_total", "Messages answered as duplicates.", load(m.duplicates));
  counter("nudge_erasures_total", "Profiles erased (requests and retention).", load(m.erasures));
  counter("nudge_profile_activations_total", "Profile actors started.", load(m.activations));
  counter("nudge_profile_passivations_total", "Profile actors persisted and stopped.", load(m.passivations));
  counter("nudge_profiles_active", "Profile actors in memory.", ctx_.dir->active(), "gauge");
  counter("nudge_profiles_tombstones", "Erased profile ids still refused activation (idle_passivate after the erasure).",
          ctx_.dir->tombstones(), "gauge");
  counter("nudge_profiles_stored", "Profiles stored (snapshots).", ctx_.env->entries(ctx_.env->profiles()), "gauge");
  counter("nudge_connections", "Open connections.", connections.load(), "gauge");
  counter("nudge_ws_dropped_total", "WebSocket clients dropped: not reading their replies, or a message not complete within http_timeout.", ws_dropped.load());
  counter("nudge_connections_refused_total", "Connections refused past max_connections.", connections_refused.load());
  counter("nudge_journal_commits_total", "LMDB commits by the journal writer.", js.commits);
  counter("nudge_journal_records_total", "Records committed by the journal writer.", js.records);
  counter("nudge_journal_failed_records_total", "Records whose commit failed.", js.failed_records);
  counter("nudge_journal_backlog", "Records waiting for the journal writer.", js.backlog, "gauge");
  const auto ss = ctx_.env->stats();
  counter("nudge_storage_map_size_bytes", "LMDB map size now (grows up to map_size_max).", ss.map_size_bytes, "gauge");
  counter("nudge_storage_map_used_bytes", "LMDB pages in use up to the last one.", ss.map_used_bytes, "gauge");
  counter("nudge_storage_allocated_bytes", "data.mdb bytes allocated ahead on disk.", ss.allocated_bytes, "gauge");
  counter("nudge_storage_prefaulted_bytes", "data.mdb bytes mapped writable ahead of use (0: off).", ss.prefaulted_bytes,
          "gauge");
  counter("nudge_storage_readers_in_use", "LMDB reader slots held, by any process.", ss.readers_in_use, "gauge");
  counter("nudge_storage_readers_cleared_total", "Reader slots of dead processes cleared.", ss.readers_cleared);
  counter("nudge_storage_disk_full_total", "Commits refused because disk space could not be allocated.",
          ss.disk_full_refusals);
  counter("nudge_storage_log_checkpoints_total", "Commit log checkpoints written (power_sync = \"log\").",
          ss.log_checkpoints);
  counter("nudge_storage_log_checkpoint_failures_total", "Commit log checkpoints that failed (retried).",
          ss.log_checkpoint_failures);
  counter("nudge_storage_log_bytes_pending", "Commit log bytes appended since the last checkpoint began.",
          ss.log_bytes_pending, "gauge");
  counter("nudge_identity_merges_total", "Profiles merged away into another (API.md section 5).", resolver_.merges());
  counter("nudge_identity_links_given_up_total", "Identity links given up for a per-profile limit.", resolver_.given_up());
  counter("nudge_identity_blocked_total", "Identity values dropped as blocked placeholders.", m.identities_blocked.load());
  counter("nudge_identity_merges_failed_total", "Merges abandoned (a profile could not hand over its state).", m.merges_failed.load());
  counter("nudge_decision_seconds_sum_ns", "Total time spent deciding, in nanoseconds.", load(m.decision_ns_total));
  auto os = ctx_.outbox ? ctx_.outbox->stats() : actors::outbox_stats{};
  counter("nudge_timers_armed", "Schedule timers armed (stored).", ctx_.env->entries(ctx_.env->timers()), "gauge");
  counter("nudge_timers_fired_total", "Schedule timers that came due and were dispatched.",
          ctx_.timers ? ctx_.timers->stats().fired : 0);
  counter("nudge_schedule_decisions_sent_total", "Firings whose decision went to destinations and connections.",
          m.schedule_fires.load());
  counter("nudge_outbox_backlog", "Outbox entries waiting for delivery.", os.pending, "gauge");
  counter("nudge_outbox_failed", "Outbox entries given up after max_attempts (kept).", os.failed, "gauge");
  counter("nudge_outbox_delivered_total", "Outbox entries acknowledged with a 2xx.", os.delivered);
  counter("nudge_outbox_attempts_total", "Delivery attempts.", os.attempts);
  counter("nudge_outbox_retries_total", "Delivery attempts that failed and were retried or given up.", os.retries);
  return o.str();
}

namespace {

std::string storage_json(const storage::env_stats& s) {
  std::ostringstream o;
  o << "{\"map_size_bytes\":" << s.map_size_bytes << ",\"map_used_bytes\":" << s.map_used_bytes
    << ",\"allocated_bytes\":" << s.allocated_bytes << ",\"prefaulted_bytes\":" << s.prefaulted_bytes
    << ",\"readers_in_use\":" << s.readers_in_use
    << ",\"readers_cleared\":" << s.readers_cleared << ",\"disk_full_refusals\":" << s.disk_full_refusals
    << ",\"log_checkpoints\":" << s.log_checkpoints << ",\"log_checkpoint_failures\":" << s.log_checkpoint_failures
    << ",\"log_bytes_pending\":" << s.log_bytes_pending << ",\"log_records_replayed\":" << s.log_records_replayed
    << "}";
  return o.str();
}

}  // namespace

std::string gateway::stats_json() {
  const auto& m = ctx_.metrics;
  auto js = ctx_.writer->stats();
  auto decisions = m.decisions.load();
  double messages_per_s = 0, decisions_per_s = 0;
  {
    const auto now = std::chrono::steady_clock::now();
    const rate_sample current{now, m.messages.load(), decisions};
    std::lock_guard<std::mutex> guard(rates_mtx_);
    while (!rate_samples_.empty() && now - rate_samples_.front().at > std::chrono::seconds(60))
      rate_samples_.pop_front();
    const rate_sample base = rate_samples_.empty() ? rate_sample{started_, 0, 0} : rate_samples_.front();
    const double secs = std::chrono::duration<double>(now - base.at).count();
    if (secs > 0) {
      messages_per_s = static_cast<double>(current.messages - base.messages) / secs;
      decisions_per_s = static_cast<double>(current.decisions - base.decisions) / secs;
    }
    if (rate_samples_.empty() || now - rate_samples_.back().at >= std::chrono::seconds(1))
      rate_samples_.push_back(current);
  }
  std::ostringstream o;
  o << "{\"profiles\":{\"active\":" << ctx_.dir->active() << ",\"stored\":" << ctx_.env->entries(ctx_.env->profiles())
    << "},\"messages\":" << m.messages.load() << ",\"events\":" << m.events.load() << ",\"decisions\":" << decisions
    << ",\"duplicates\":" << m.duplicates.load() << ",\"suppressed\":" << m.suppressed.load()
    << ",\"erasures\":" << m.erasures.load() << ",\"messages_per_second\":" << messages_per_s
    << ",\"decisions_per_second\":" << decisions_per_s << ",\"decision_mean_us\":"
    << (decisions ? static_cast<double>(m.decision_ns_total.load()) / 1000.0 / static_cast<double>(decisions) : 0.0)
    << ",\"decision_latency_us\":{\"p50\":" << m.decision_latency.quantile_us(0.5)
    << ",\"p90\":" << m.decision_latency.quantile_us(0.9) << ",\"p99\":" << m.decision_latency.quantile_us(0.99)
    << ",\"p999\":" << m.decision_latency.quantile_us(0.999) << "}"
    << ",\"journal\":{\"commits\":" << js.commits << ",\"records\":" << js.records << ",\"backlog\":" << js.backlog
    << ",\"failed\":" << js.failed_records << ",\"live_entries\":" << js.live_entries
    << ",\"live_profiles\":" << js.live_profiles << ",\"checkpoints_asked\":" << js.checkpoints_asked
    << "},\"storage\":" << storage_json(ctx_.env->stats()) << ",\"holdout\":" << ctx_.counters->holdout_json()
    << ",\"identity\":{\"merges\":" << resolver_.merges() << ",\"links_given_up\":" << resolver_.given_up()
    << ",\"blocked\":" << m.identities_blocked.load() << "}"
    << ",\"connections\":" << connections.load() << ",";
  schedule_stats(o);
  o << "}";
  return o.str();
}

}  // namespace nudge::net
