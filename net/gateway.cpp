#include <utility>

#include "net/gateway.hpp"

#include "actors/directory.hpp"
#include "actors/journal.hpp"
#include "actors/outbox_service.hpp"
#include "actors/timer_service.hpp"
#include "actors/shared_counters.hpp"
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

}  // namespace

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

void gateway::dispatch(actors::envelope_ptr env, route_cache* cache) {
  auto& m = env->msg;
  if (cache && !cache->profile_id.empty() && cache->generation == resolver_.generation() && m.identities == cache->ids) {
    m.identities_added = cache->added;
    dispatch_to(cache->profile_id, std::move(env));
    return;
  }
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
  if (storage::profile_table::get(txn, profile_id, ec))
    return true;
  return !storage::journal_table::read_after(txn, profile_id, 0, ec).empty();
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

std::string gateway::metrics_text() const {
  const auto& m = ctx_.metrics;
  auto js = ctx_.writer->stats();
  std::ostringstream o;
  auto counter = [&](const char* name, const char* help, std::uint64_t v, const char* type = "counter") {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << v << '\n';
  };
  counter("nudge_messages_total", "Messages applied by profile actors.", m.messages.load());
  counter("nudge_events_total", "Events applied.", m.events.load());
  counter("nudge_decisions_total", "Decisions made.", m.decisions.load());
  counter("nudge_decisions_with_actions_total", "Decisions that returned at least one action.", m.decisions_with_actions.load());
  counter("nudge_duplicates_total", "Messages answered as duplicates.", m.duplicates.load());
  counter("nudge_profile_activations_total", "Profile actors started.", m.activations.load());
  counter("nudge_profile_passivations_total", "Profile actors persisted and stopped.", m.passivations.load());
  counter("nudge_profiles_active", "Profile actors in memory.", ctx_.dir->active(), "gauge");
  counter("nudge_connections", "Open connections.", connections.load(), "gauge");
  counter("nudge_ws_dropped_total", "WebSocket clients dropped for not reading.", ws_dropped.load());
  counter("nudge_journal_commits_total", "LMDB commits by the journal writer.", js.commits);
  counter("nudge_journal_records_total", "Records committed by the journal writer.", js.records);
  counter("nudge_journal_failed_records_total", "Records whose commit failed.", js.failed_records);
  counter("nudge_journal_backlog", "Records waiting for the journal writer.", js.backlog, "gauge");
  counter("nudge_identity_merges_total", "Profiles merged away into another (API.md section 5).", resolver_.merges());
  counter("nudge_identity_links_given_up_total", "Identity links given up for a per-profile limit.", resolver_.given_up());
  counter("nudge_identity_blocked_total", "Identity values dropped as blocked placeholders.", m.identities_blocked.load());
  counter("nudge_identity_merges_failed_total", "Merges abandoned (a profile could not hand over its state).", m.merges_failed.load());
  counter("nudge_decision_seconds_sum_ns", "Total time spent deciding, in nanoseconds.", m.decision_ns_total.load());
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

std::string gateway::stats_json() const {
  const auto& m = ctx_.metrics;
  auto js = ctx_.writer->stats();
  auto decisions = m.decisions.load();
  std::ostringstream o;
  o << "{\"profiles\":{\"active\":" << ctx_.dir->active() << ",\"stored\":" << ctx_.env->entries(ctx_.env->profiles())
    << "},\"messages\":" << m.messages.load() << ",\"events\":" << m.events.load() << ",\"decisions\":" << decisions
    << ",\"duplicates\":" << m.duplicates.load() << ",\"decision_mean_us\":"
    << (decisions ? static_cast<double>(m.decision_ns_total.load()) / 1000.0 / static_cast<double>(decisions) : 0.0)
    << ",\"journal\":{\"commits\":" << js.commits << ",\"records\":" << js.records << ",\"backlog\":" << js.backlog
    << ",\"failed\":" << js.failed_records << "},\"holdout\":" << ctx_.counters->holdout_json()
    << ",\"identity\":{\"merges\":" << resolver_.merges() << ",\"links_given_up\":" << resolver_.given_up()
    << ",\"blocked\":" << m.identities_blocked.load() << "}"
    << ",\"connections\":" << connections.load() << ",";
  schedule_stats(o);
  o << "}";
  return o.str();
}

}  // namespace nudge::net
