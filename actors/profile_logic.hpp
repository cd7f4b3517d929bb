// The deterministic part of a profile: applying a journal entry to the state.
// The live path and recovery (snapshot + journal replay) share it, so that a
// restarted service answers exactly as before. Pure functions, any thread.
#pragma once

#include "actors/context.hpp"
#include "policies/profile.hpp"
#include "storage/journal_table.hpp"

#include <string>

namespace nudge::actors {

/// Whether `purpose` is granted at `now` (an expired grant reads as the default).
bool consent_granted(const policies::profile_state& p, const profile_options& opt,
                     std::string_view purpose, policies::timestamp now);

/// Consent bits in the order of opt.purposes.
std::vector<bool> consent_bits(const policies::profile_state& p, const profile_options& opt,
                               policies::timestamp now);

/// Applies everything of `e` but its decision.
void apply_entry(policies::profile_state& p, const storage::journal_entry& e, const profile_options& opt);

/// Records a decision (bounded by opt.decisions_max).
void apply_decision(policies::profile_state& p, const policies::decision_record& d, const profile_options& opt);

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
