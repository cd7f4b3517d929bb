// The deterministic part of a profile: applying a journal entry to the state.
// The live path and recovery (snapshot + journal replay) share it, so that a
// restarted service answers exactly as before. Pure functions, any thread.
#pragma once

#include "actors/context.hpp"
#include "policies/profile.hpp"
#include "storage/audit_record.hpp"
#include "storage/journal_table.hpp"
#include "storage/profile_table.hpp"
#include "storage/read_txn.hpp"

#include <cstdint>
#include <string>
#include <system_error>
#include <string_view>
#include <vector>

namespace nudge::actors {

/// Whether `purpose` is granted at `now` (an expired grant reads as the default).
bool consent_granted(const policies::profile_state& p, const profile_options& opt,
                     std::string_view purpose, policies::timestamp now);

/// Consent bits in the order of opt.purposes.
std::vector<bool> consent_bits(const policies::profile_state& p, const profile_options& opt,
                               policies::timestamp now);
/// The same into `out` (its storage reused).
void consent_bits(const policies::profile_state& p, const profile_options& opt, policies::timestamp now,
                  std::vector<bool>& out);

/// Applies everything of `e` but its decision.
void apply_entry(policies::profile_state& p, const storage::journal_entry& e, const profile_options& opt);
/// The same with the entry's seen_key_hash already computed (the actor has it from its
/// dedupe check); returns whether note_seen noted it.
bool apply_entry(policies::profile_state& p, const storage::journal_entry& e, const profile_options& opt,
                 std::uint64_t key_hash);

/// Records a decision (bounded by opt.decisions_max).
void apply_decision(policies::profile_state& p, const policies::decision_record& d, const profile_options& opt);

/// Retention: drops history older than now - opt.history_max_age (apply, load, decide).
void trim_history(policies::profile_state& p, const profile_options& opt, policies::timestamp now);

/// A stored profile as its actor activates it: the snapshot, then its live journal
/// entries (at `journal_positions`, ascending: the writer's journal_index, or
/// journal_table::positions_of for a copy) after it applied, history trimmed at `now`.
/// Entries that are gone or behind the snapshot are skipped. `seq` is the last sequence
/// applied and `snapshot_seq` the snapshot's (both 0 for a profile never stored, which
/// loads blank). A read error sets `ec`. Backup checks use it to read a copy as the
/// service would.
struct loaded_profile {
  policies::profile_state state;
  std::uint64_t seq = 0;
  std::uint64_t snapshot_seq = 0;
  /// profile_table::sealed_after() of the snapshot read (0 without one, or for a log
  /// it kept inline): the chunks of its logs stored full.
  storage::profile_table::chunk_marks sealed;
};
loaded_profile load_profile(storage::read_txn& txn, const std::string& id,
                            const std::vector<std::uint64_t>& journal_positions, const profile_options& opt,
                            policies::timestamp now, std::error_code& ec);

/// Whether every identity of `p` is of an anonymous type (and it has at least one):
/// such a profile is erased once idle for opt.anonymous_ttl.
bool anonymous_only(const policies::profile_state& p, const profile_options& opt);

/// The purposes decision `d` relied on: those its actions require (their `requires`
/// and marketing_<channel> on email, sms and push) that `bits` grant, and
/// `personalization` when the decision saw the profile (`personal`).
/// Replaces `out` with them; the views point into opt.purposes.
void relied_on(const policies::decision& d, std::string_view channel, const profile_options& opt,
               const std::vector<bool>& bits, bool personal, std::vector<std::string_view>& out);

/// The record a profile keeps of decision `d` (made by `pol` for request `request_id`
/// on `channel`/`placement`): its actions as shown, and relied_on() as above.
policies::decision_record make_decision_record(const policies::policy& pol, const policies::decision& d,
                                               std::string_view decision_id, std::string_view request_id,
                                               policies::timestamp now, std::string_view channel,
                                               std::string_view placement, const profile_options& opt,
                                               const std::vector<bool>& bits, bool personal);

/// A merge's audit detail: `{"survivor", "merged_from": [...], "identities": [{"type",
/// "value"}...] (what the merged profiles held, now the survivor's), "message_id"}`.
std::string merge_detail_json(const std::string& survivor, const std::vector<std::string>& merged,
                              const std::vector<policies::identity>& identities, const std::string& message_id);
/// A given-up link's audit detail: `{"type": TYPE, "message_id"}` (the value stays out
/// of the trail: it belongs to another profile, which may be erased).
std::string given_up_detail_json(const policies::identity& id, const std::string& message_id);

/// The consent audit record's detail: `{"purpose","state","source","ts","expires"?}`.
std::string consent_detail_json(const policies::consent_record& c);

/// GET /v1/profiles/{id}/audit: `{"profile_id": ..., "records": [{"ts","kind","detail"}]}`,
/// the stored records and the profile's kept decisions (kind "decision"), by time.
std::string audit_json(const policies::profile_state& p, const std::vector<storage::audit_record>& audit);

/// GET /v1/profiles/{id}/export: `{"profile": <profile_json>, "identities", "events",
/// "decisions", "consent_history", "audit"}`: everything stored about the person.
std::string export_json(const policies::profile_state& p, const profile_options& opt, policies::timestamp now,
                        const std::vector<storage::audit_record>& audit);

/// A stable 64-bit hash of a message's idempotency key (source + '\0' + id): the
/// first 8 bytes of its SHA-256. Stored in snapshots, so it must not change.
std::uint64_t seen_key_hash(std::string_view source, std::string_view id);

/// Idempotency memory: notes the message `key_hash` accepted at `ts` in p.seen, after
/// dropping what left the dedupe window. When p.seen already holds
/// opt.dedupe_seen_max messages, it is not noted and p.seen_spill_until moves to
/// ts + the window: until then the profile's ids are looked up by id as well. Returns
/// whether it was noted (its reply is then stored by time, else by id).
/// Deterministic, so that replaying the journal rebuilds the same memory.
bool note_seen(policies::profile_state& p, std::uint64_t key_hash, policies::timestamp ts, const profile_options& opt);

/// Where the idempotency memory may hold `key_hash`: the index of the newest entry of
/// p.seen before `end` with that hash, noted at or after `oldest`; seen.size() when
/// none. Called again with the index it returned, it finds the next older one (a hash
/// can repeat: the stored reply then tells). Four entries are compared per step without
/// a branch each: a busy profile holds up to dedupe_seen_max (1,024) entries, and the
/// one-by-one loop this replaces took ~16 instructions per entry on every message
/// (docs/BENCHMARKS.md, "The seen messages' scan").
std::size_t find_seen(const std::vector<policies::seen_message>& seen, std::size_t end, std::uint64_t key_hash,
                      policies::timestamp oldest) noexcept;

/// Merges `loser` into `survivor` (API.md section 5): identities united, history
/// united in time order (deduplicated by message id, bounded as usual), stats added,
/// traits latest-wins per key, consent latest-wins per purpose (denied wins ties),
/// decisions (caps, cooldowns) united; `loser` and whatever it absorbed before go to
/// merged_from. Without analytics afterwards, behaviour is purged as on withdrawal.
void merge_profiles(policies::profile_state& survivor, const policies::profile_state& loser,
                    const profile_options& opt, policies::timestamp now);

/// `{"profile_id": ..., "consent": {PURPOSE: {"state": ..., "ts": ..., "source": ...}}}`.
std::string consent_state_json(const policies::profile_state& p, const profile_options& opt, policies::timestamp now);

/// The profile object of API.md section 4 as JSON.
std::string profile_json(const policies::profile_state& p, const profile_options& opt, policies::timestamp now);

}  // namespace nudge::actors
