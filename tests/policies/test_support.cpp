#include "test_support.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace nudge::policies::test {

timestamp t0() {
  using namespace std::chrono;
  return sys_days{year{2026} / November / 24} + 12h;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string describe(const std::vector<problem>& problems) {
  std::string out;
  for (const auto& p : problems)
    out += "'" + p.path + "': " + p.message + "\n";
  return out;
}

std::shared_ptr<const policy> compile_ok(std::string_view json, std::string* problems_text,
                                         const policy_limits& limits) {
  auto result = compile(json, limits);
  if (problems_text)
    *problems_text = describe(result.problems);
  return result.compiled;
}

std::vector<problem> problems_of(std::string_view json, const policy_limits& limits) {
  return compile(json, limits).problems;
}

bool has_problem_at(const std::vector<problem>& problems, std::string_view path) {
  return std::any_of(problems.begin(), problems.end(),
                     [path](const problem& p) { return p.path == path; });
}

event_record make_event(std::string name, timestamp ts, std::vector<property> properties,
                        std::string channel) {
  static int counter = 0;
  event_record e("e-" + std::to_string(++counter), name, ts, channel, properties);
  return e;
}

profile_builder::profile_builder() {
  state.id = "p-test";
  state.identities.push_back(nudge::policies::identity{"anonymous_id", "a-1"});
}

profile_builder& profile_builder::event(std::string name, timestamp ts,
                                        std::vector<property> props) {
  state.history.push_back(make_event(std::move(name), ts, std::move(props)));
  if (state.stats.events == 0 || ts < state.stats.first_seen)
    state.stats.first_seen = ts;
  if (state.stats.events == 0 || ts > state.stats.last_seen)
    state.stats.last_seen = ts;
  ++state.stats.events;
  return *this;
}

profile_builder& profile_builder::shown(std::string action, timestamp ts, std::string channel,
                                        std::string placement) {
  const std::string id = "d-" + std::to_string(state.decisions.size() + 1);
  const shown_action a{action, channel, placement};
  decision_record d(id, "", ts, channel, placement, "", std::span(&a, 1), false, {});
  state.decisions.push_back(std::move(d));
  return *this;
}

profile_builder& profile_builder::trait(std::string key, scalar value) {
  state.traits.push_back(nudge::policies::trait{std::move(key), std::move(value), t0()});
  return *this;
}

profile_builder& profile_builder::identity(std::string type, std::string value) {
  state.identities.push_back(nudge::policies::identity{std::move(type), std::move(value)});
  return *this;
}

profile_state profile_builder::build() {
  std::stable_sort(state.history.begin(), state.history.end(),
                   [](const event_record& a, const event_record& b) { return a.ts() < b.ts(); });
  std::stable_sort(state.decisions.begin(), state.decisions.end(),
                   [](const decision_record& a, const decision_record& b) { return a.ts() < b.ts(); });
  return state;
}

std::vector<bool> consent_for(std::initializer_list<std::string_view> granted,
                              const policy_limits& limits) {
  std::vector<bool> bits(limits.purposes.size(), false);
  for (auto g : granted)
    for (std::size_t i = 0; i < limits.purposes.size(); ++i)
      if (limits.purposes[i] == g)
        bits[i] = true;
  return bits;
}

decide_request make_request(const profile_state& p, std::string_view channel,
                            std::string_view placement, timestamp now,
                            const std::vector<bool>* consent, bool explain) {
  decide_request r;
  r.profile = &p;
  r.channel = channel;
  r.placement = placement;
  r.now = now;
  r.consent = consent;
  r.explain = explain;
  return r;
}

const explain_entry& entry_for(const decision& d, std::string_view id) {
  for (const auto& e : d.explain)
    if (e.action == id)
      return e;
  static const explain_entry missing{"<missing>", reason::eligible, "no explain entry"};
  return missing;
}

std::string first_action(const decision& d) {
  return d.actions.empty() ? std::string() : std::string(d.actions.front().action.id);
}

bool fake_counters::try_reserve_global(std::size_t action_index, timestamp) {
  auto it = global_room.find(action_index);
  if (it == global_room.end()) {
    ++reservations;
    return true;
  }
  if (it->second <= 0)
    return false;
  --it->second;
  ++reservations;
  return true;
}

bool fake_counters::global_available(std::size_t action_index, timestamp) {
  auto it = global_room.find(action_index);
  return it == global_room.end() || it->second > 0;
}

std::pair<double, double> fake_counters::learned(std::size_t action_index) {
  auto it = counts.find(action_index);
  return it == counts.end() ? std::pair<double, double>{0, 0} : it->second;
}

}  // namespace nudge::policies::test
