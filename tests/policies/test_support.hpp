// Helpers shared by the policy tests: building profiles and requests against an
// injected clock, compiling policies that must be valid, and a simple
// shared_counters double.
#pragma once

#include "policies/policy.hpp"
#include "policies/profile.hpp"

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nudge::policies::test {

using namespace std::chrono_literals;

/// The injected "now" of most tests: 2026-11-24T12:00:00Z.
timestamp t0();

/// The file's contents, or "" when it cannot be read.
std::string read_text_file(const std::string& path);

/// Compiles `json`; on problems, returns null and writes them to `problems_text`.
std::shared_ptr<const policy> compile_ok(std::string_view json, std::string* problems_text = nullptr,
                                         const policy_limits& limits = {});

/// Problems of `json` as "PATH: MESSAGE" lines.
std::vector<problem> problems_of(std::string_view json, const policy_limits& limits = {});
bool has_problem_at(const std::vector<problem>& problems, std::string_view path);
std::string describe(const std::vector<problem>& problems);

event_record make_event(std::string name, timestamp ts,
                        std::vector<property> properties = {}, std::string channel = "web");

/// A profile with a fluent way to add history, decisions, traits and identities.
struct profile_builder {
  profile_state state;

  profile_builder();
  profile_builder& event(std::string name, timestamp ts, std::vector<property> props = {});
  profile_builder& shown(std::string action, timestamp ts, std::string channel = "web",
                         std::string placement = "banner");
  profile_builder& trait(std::string key, scalar value);
  profile_builder& identity(std::string type, std::string value);
  /// Sorts history and decisions oldest first, as the engine expects.
  profile_state build();
};

/// Consent bits for the default purposes with `granted` set.
std::vector<bool> consent_for(std::initializer_list<std::string_view> granted,
                              const policy_limits& limits = {});

/// A request on `channel`/`placement` at `now`.
decide_request make_request(const profile_state& p, std::string_view channel,
                            std::string_view placement, timestamp now,
                            const std::vector<bool>* consent, bool explain = true);

/// The explain entry of `id` (fails the test when absent).
const explain_entry& entry_for(const decision& d, std::string_view id);
/// The id of the first chosen action, or "" when none.
std::string first_action(const decision& d);

/// shared_counters for tests: unlimited global caps unless `global_room` says otherwise,
/// learned counts set by hand.
class fake_counters : public shared_counters {
public:
  bool try_reserve_global(std::size_t action_index, timestamp now) override;
  bool global_available(std::size_t action_index, timestamp now) override;
  std::pair<double, double> learned(std::size_t action_index) override;

  std::map<std::size_t, int> global_room;  ///< remaining reservations; absent: unlimited
  std::map<std::size_t, std::pair<double, double>> counts;
  int reservations = 0;
};

}  // namespace nudge::policies::test
