#include "policies/detail/compiled_policy.hpp"

#include "policies/detail/evaluator.hpp"
#include "policies/detail/text.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace nudge::policies::detail {
namespace {

constexpr std::size_t npos = static_cast<std::size_t>(-1);

struct candidate {
  std::size_t index = 0;
  const action* act = nullptr;
  double expected_value = 0;
  std::string_view channel;
  std::string_view placement;
};

/// propensity × value × weight. Finite factors can still make 0 × ∞ = NaN (a value
/// and a weight of 1e200 each, a propensity of 0), which compares neither above nor
/// below anything and would break the ranking's sort (not a strict weak order): it
/// ranks as 0, what a propensity of 0 means. An infinite product stays infinite.
double expected_value(double propensity, const action& a) noexcept {
  const double ev = propensity * a.value * a.weight;
  return std::isnan(ev) ? 0.0 : ev;
}

bool granted(const decide_request& req, std::size_t purpose) noexcept {
  return purpose != npos && req.consent && purpose < req.consent->size() &&
         (*req.consent)[purpose];
}

std::string_view event_for(cooldown_rule::after kind) noexcept {
  switch (kind) {
    case cooldown_rule::after::shown:
      return "action_shown";
    case cooldown_rule::after::dismissed:
      return "action_dismissed";
    case cooldown_rule::after::accepted:
      return "action_accepted";
  }
  return {};
}

/// The cap of `a` that is full at `now`, or null.
const cap* full_cap(const profile_state& p, const action& a, timestamp now) noexcept {
  for (const auto& c : a.caps) {
    const timestamp from = now - c.per;
    std::uint64_t count = 0;
    if (count >= c.max)
      return &c;
    const auto bit = decision_record::action_bit(a.id);
    for (auto d = p.decisions.rbegin(); d != p.decisions.rend() && d->ts() >= from; ++d)
      if (d->shows(a.id, bit) && ++count >= c.max)
        return &c;
  }
  return nullptr;
}

/// The cooldown of `a` that still runs at `now`, or null. Records are oldest first,
/// so each scan stops at the first record whose cooldown would have ended.
const cooldown_rule* running_cooldown(const profile_state& p, const action& a,
                                      timestamp now) noexcept {
  const auto bit = decision_record::action_bit(a.id);
  for (const auto& rule : a.cooldowns) {
    if (rule.kind == cooldown_rule::after::shown)
      for (auto d = p.decisions.rbegin(); d != p.decisions.rend() && d->ts() + rule.length > now; ++d)
        if (d->shows(a.id, bit))
          return &rule;
    const std::string_view name = event_for(rule.kind);
    for (auto e = p.history.rbegin(); e != p.history.rend() && e->ts() + rule.length > now; ++e) {
      if (!rule.event_key.names(*e, name))
        continue;
      const auto id = e->find("action");
      if (const auto* s = id ? std::get_if<std::string_view>(&*id) : nullptr; s && *s == a.id)
        return &rule;
    }
  }
  return nullptr;
}

bool contact_full(const profile_state& p, const contact_spec& spec, timestamp now) noexcept {
  const timestamp from = now - spec.per;
  std::uint64_t count = 0;
  if (count >= spec.max)
    return true;
  auto on_listed = [&spec](std::string_view channel) {
    return std::find(spec.channels.begin(), spec.channels.end(), channel) != spec.channels.end();
  };
  for (auto d = p.decisions.rbegin(); d != p.decisions.rend() && d->ts() >= from; ++d) {
    bool counts = false;
    for (std::size_t i = 0; i < d->action_count() && !counts; ++i) {
      const std::string_view channel = d->action(i).channel;
      counts = on_listed(channel.empty() ? d->channel() : channel);
    }
    if (counts && ++count >= spec.max)
      return true;
  }
  return false;
}

/// Eligibility of one action, in the order of POLICY.md; the first failing check wins.
class checker {
public:
  checker(const program& prog, const decide_request& req, evaluator& ev)
      : prog_(prog), req_(req), ev_(ev) {}

  /// `channel` receives the position of the request's channel in a.channels.
  reason check(const action& a, std::size_t index, std::string_view& detail,
               std::size_t& channel) {
    const profile_state& p = req_.limits != nullptr ? *req_.limits : *req_.profile;
    auto ch = std::find(a.channels.begin(), a.channels.end(), req_.channel);
    if (ch == a.channels.end()) {
      detail = req_.channel;
      return reason::wrong_channel;
    }
    channel = static_cast<std::size_t>(ch - a.channels.begin());
    if (!req_.placement.empty() && !a.placements.empty() &&
        std::find(a.placements.begin(), a.placements.end(), req_.placement) == a.placements.end()) {
      detail = req_.placement;
      return reason::wrong_placement;
    }
    for (std::size_t i = 0; i < a.requires_index.size(); ++i)
      if (!granted(req_, a.requires_index[i])) {
        detail = a.requires_names[i];
        return reason::consent_missing;
      }
    // The fallback too: it needs no purpose of its own (POLICY.md), but an email, sms or
    // push never goes out without marketing_<channel> (API.md section 5).
    if (!a.channel_purpose[channel].empty() && !granted(req_, a.channel_purpose_index[channel])) {
      detail = a.channel_purpose[channel];
      return reason::consent_missing;
    }
    ev_.set_action(&a);
    if (a.when && !ev_.eval(*a.when)) {
      if (req_.explain)
        detail = ev_.blame(*a.when, false);
      return reason::condition_false;
    }
    if (a.suppress && ev_.eval(*a.suppress)) {
      if (req_.explain)
        detail = ev_.blame(*a.suppress, true);
      return reason::suppressed;
    }
    if (const cap* c = full_cap(p, a, req_.now)) {
      detail = c->pointer;
      return reason::capped;
    }
    if (const cooldown_rule* r = running_cooldown(p, a, req_.now)) {
      detail = r->pointer;
      return reason::cooldown;
    }
    if (a.global_cap && req_.counters && !req_.counters->global_available(index, req_.now))
      return reason::global_capped;
    if (prog_.contact) {
      const auto& listed = prog_.contact->channels;
      if (std::find(listed.begin(), listed.end(), req_.channel) != listed.end()) {
        if (!contact_full_)
          contact_full_ = contact_full(p, *prog_.contact, req_.now);
        if (*contact_full_) {
          detail = prog_.contact->pointer;
          return reason::contact_policy;
        }
      }
    }
    return reason::eligible;
  }

  double propensity(const action& a, std::size_t index) {
    const propensity_spec& p = a.propensity;
    switch (p.from) {
      case propensity_spec::source::fixed:
        return p.fixed;
      case propensity_spec::source::model:
        return ev_.score(p.model);
      case propensity_spec::source::learn:
        break;
    }
    if (!req_.counters)
      return p.prior_a / (p.prior_a + p.prior_b);
    const auto [successes, failures] = req_.counters->learned(index);
    const double alpha = p.prior_a + std::max(0.0, successes);
    const double beta = p.prior_b + std::max(0.0, failures);
    // One stream per action, so a draw does not depend on which others are eligible.
    splitmix64 rng(req_.random_seed ^ (0xd1b54a32d192ed03ULL * (index + 1)));
    std::gamma_distribution<double> ga(alpha, 1.0);
    std::gamma_distribution<double> gb(beta, 1.0);
    const double x = ga(rng);
    const double y = gb(rng);
    return x + y > 0 ? x / (x + y) : alpha / (alpha + beta);
  }

private:
  const program& prog_;
  const decide_request& req_;
  evaluator& ev_;
  std::optional<bool> contact_full_;
};

std::string_view resolve_placement(const action& a, std::string_view requested) noexcept {
  if (!requested.empty()) {
    auto it = std::find(a.placements.begin(), a.placements.end(), requested);
    return it != a.placements.end() ? std::string_view(*it) : requested;
  }
  return a.placements.empty() ? std::string_view() : std::string_view(a.placements.front());
}

duration max_window(const action& a) {
  duration out{0};
  for (const auto& c : a.caps)
    out = std::max(out, c.per);
  for (const auto& r : a.cooldowns)
    out = std::max(out, r.length);
  return out;
}

}  // namespace

compiled_policy::compiled_policy(program prog) : prog_(std::move(prog)) {
  for (std::size_t i = 0; i < prog_.actions.size(); ++i) {
    index_.emplace(prog_.actions[i].id, i);
    longest_window_ = std::max(longest_window_, max_window(prog_.actions[i]));
  }
  if (prog_.fallback) {
    index_.emplace(prog_.fallback->id, prog_.actions.size());
    longest_window_ = std::max(longest_window_, max_window(*prog_.fallback));
  }
  if (prog_.contact)
    longest_window_ = std::max(longest_window_, prog_.contact->per);
  schedules_.reserve(prog_.schedules.size());
  for (const auto& s : prog_.schedules) {
    schedule_view v{s.id, s.on, s.emit, s.channel, s.after, {}};
    v.cancel_on.assign(s.cancel_on.begin(), s.cancel_on.end());
    schedules_.push_back(std::move(v));
  }
}

const action* compiled_policy::at(std::size_t index) const noexcept {
  if (index < prog_.actions.size())
    return &prog_.actions[index];
  if (index == prog_.actions.size() && prog_.fallback)
    return &*prog_.fallback;
  return nullptr;
}

std::size_t compiled_policy::find_action(std::string_view id) const noexcept {
  auto it = index_.find(id);
  return it == index_.end() ? npos : it->second;
}

std::optional<action_info> compiled_policy::describe(std::size_t index) const {
  const action* a = at(index);
  if (!a)
    return std::nullopt;
  action_info info;
  info.action = action_view{index, a->id, a->payload_json, a->payload_msgpack, a->requires_names};
  info.channels.assign(a->channels.begin(), a->channels.end());
  info.placements.assign(a->placements.begin(), a->placements.end());
  if (a->global_cap)
    info.global_cap = global_cap_view{a->global_cap->max, a->global_cap->per};
  info.learns = a->propensity.from == propensity_spec::source::learn;
  return info;
}

decision compiled_policy::decide(const decide_request& req) const {
  decision out;
  if (!req.profile)
    return out;
  thread_local evaluator_scratch scratch;  // decide() does not nest on a thread
  evaluator ev(prog_, req, scratch);
  checker check(prog_, req, ev);
  out.holdout =
      prog_.holdout > 0 && stable_unit(req.profile->id, prog_.holdout_salt) < prog_.holdout;

  const std::size_t n = prog_.actions.size();
  std::vector<reason> reasons;
  std::vector<std::string_view> details;
  if (req.explain) {
    reasons.assign(n + 1, reason::eligible);
    details.assign(n + 1, {});
  }
  auto note = [&](std::size_t index, reason r, std::string_view detail) {
    if (req.explain) {
      reasons[index] = r;
      details[index] = detail;
    }
  };

  thread_local std::vector<candidate> candidates;  // reused: copied out into `out`
  candidates.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const action& a = prog_.actions[i];
    std::string_view detail;
    std::size_t channel = 0;
    reason r = check.check(a, i, detail, channel);
    if (r == reason::eligible && out.holdout)
      r = reason::holdout;
    if (r == reason::eligible)
      candidates.push_back(candidate{i, &a, expected_value(check.propensity(a, i), a),
                                     a.channels[channel], resolve_placement(a, req.placement)});
    note(i, r, detail);
  }

  auto by_value = [](const candidate& x, const candidate& y) {
    if (x.expected_value != y.expected_value)
      return x.expected_value > y.expected_value;
    if (x.act->priority != y.act->priority)
      return x.act->priority > y.act->priority;
    return x.act->id < y.act->id;
  };
  auto by_priority = [](const candidate& x, const candidate& y) {
    if (x.act->priority != y.act->priority)
      return x.act->priority > y.act->priority;
    if (x.expected_value != y.expected_value)
      return x.expected_value > y.expected_value;
    return x.act->id < y.act->id;
  };
  if (prog_.ranking == rank_by::expected_value)
    std::sort(candidates.begin(), candidates.end(), by_value);
  else
    std::sort(candidates.begin(), candidates.end(), by_priority);

  auto choose = [&](const candidate& c) {
    out.actions.push_back(chosen_action{
        action_view{c.index, c.act->id, c.act->payload_json, c.act->payload_msgpack, c.act->requires_names},
        c.expected_value, c.channel, c.placement});
  };
  // At most one action per placement (POLICY.md): the request's placement when it names
  // one, else the first of the action's own placements that no action ranked above it
  // took; an action that lists none holds no placement and contends for none.
  auto taken = [&out](std::string_view placement) {
    return std::any_of(out.actions.begin(), out.actions.end(),
                       [placement](const chosen_action& x) { return x.placement == placement; });
  };
  for (auto& c : candidates) {
    reason r = reason::eligible;
    bool placed = true;
    if (!req.placement.empty()) {
      placed = !taken(c.placement);
    } else if (!c.act->placements.empty()) {
      const auto free = std::find_if(c.act->placements.begin(), c.act->placements.end(),
                                     [&taken](const std::string& p) { return !taken(p); });
      placed = free != c.act->placements.end();
      if (placed)
        c.placement = *free;
    }
    if (out.actions.size() >= prog_.max_actions || !placed)
      r = reason::lost_arbitration;
    else if (c.act->global_cap && req.counters &&
             !req.counters->try_reserve_global(c.index, req.now))
      r = reason::global_capped;
    else
      choose(c);
    note(c.index, r, {});
  }

  if (prog_.fallback) {
    const action& f = *prog_.fallback;
    std::string_view detail;
    reason r = reason::lost_arbitration;
    if (out.actions.empty()) {
      std::size_t channel = 0;
      r = check.check(f, n, detail, channel);
      if (r == reason::eligible) {
        if (f.global_cap && req.counters && !req.counters->try_reserve_global(n, req.now))
          r = reason::global_capped;
        else
          choose(candidate{n, &f, expected_value(check.propensity(f, n), f), f.channels[channel],
                           resolve_placement(f, req.placement)});
      }
    }
    note(n, r, detail);
  }

  if (req.explain) {
    out.explain.reserve(n + 1);
    for (std::size_t i = 0; i < n; ++i)
      out.explain.push_back(
          explain_entry{prog_.actions[i].id, reasons[i], std::string(details[i])});
    if (prog_.fallback)
      out.explain.push_back(explain_entry{prog_.fallback->id, reasons[n], std::string(details[n])});
  }
  return out;
}

}  // namespace nudge::policies::detail
