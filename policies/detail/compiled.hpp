// The compiled form of a policy: plain data built once by the compiler
// (detail/compiler.cpp) and only read afterwards by the evaluator and decide().
// Conditions live in one flat vector and refer to each other, to segments and to
// models by index, so that evaluation never looks anything up by name in the policy.
#pragma once

#include "policies/policy.hpp"
#include "policies/profile.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nudge::policies::detail {

enum class op : std::uint8_t { eq, ne, gt, gte, lt, lte, in, exists };

/// One `OP: VALUE` of a condition. For `in`, `list` holds the values; for `exists`,
/// `value` holds a bool. Durations (ago stats) are stored as milliseconds (double).
struct comparison {
  op kind = op::eq;
  scalar value;
  std::vector<scalar> list;
};

/// One WHERE entry: the event property at `path` compared with a literal, with the
/// message being decided (`$current`), or with the action's parameter (`$param`).
struct where_entry {
  enum class source : std::uint8_t { literal, current, param };
  std::string path;
  source from = source::literal;
  std::string ref;                  ///< `$current` path or `$param` name
  std::vector<comparison> compare;  ///< literal: all must hold (a bare value is eq)
};

enum class cond_kind : std::uint8_t {
  all, any, negate, event, current, trait, stat, segment, score, channel, placement,
  identity, consent,
};

enum class stat_kind : std::uint8_t { event_count, first_seen_ago, last_seen_ago };

/// One compiled condition. Only the members of its kind are meaningful.
struct condition {
  cond_kind kind = cond_kind::all;
  std::string pointer;  ///< JSON pointer into the document, for explain

  std::vector<std::uint32_t> children;  ///< all / any / not (one child)
  std::string name;                     ///< event NAME, trait KEY, identity TYPE
  std::vector<std::string> names;       ///< current names, channel / placement names
  std::optional<duration> within;       ///< event
  std::optional<std::string> since;     ///< event
  policies::name_key key;               ///< event: how a scan finds events named `name`
  policies::name_key since_key;         ///< event with `since`: the same for it
  std::optional<std::string> sum;       ///< event
  std::vector<where_entry> where;       ///< event, current
  std::vector<comparison> compare;      ///< event (default gte 1), trait, stat, score
  stat_kind stat = stat_kind::event_count;
  std::size_t ref = 0;  ///< segment index, model index, purpose index
  bool uses_param = false;  ///< this subtree reads `$param` (directly or via a segment)
  /// event: its bit in a profile's history_memo, or -1 when a scan matches events
  /// itself (program::memo).
  std::int8_t memo_slot = -1;
  /// event with `since`: the bit of the events named `*since`, or -1 (a scan).
  std::int8_t since_slot = -1;
};

/// What one bit of a profile's history_memo says of an event: that it is named `name`
/// and, with `where_of`, that the `where` of that condition holds for it.
struct memo_matcher {
  policies::name_key key;
  std::string name;
  std::optional<std::uint32_t> where_of;  ///< a condition index
};

struct feature {
  double weight = 0;
  std::uint32_t x = 0;  ///< condition index
};

struct model {
  std::string id;
  double bias = 0;
  std::vector<feature> features;
};

struct segment {
  std::string id;
  std::string pointer;
  std::uint32_t root = 0;
  bool uses_param = false;
};

struct cap {
  std::uint64_t max = 0;
  duration per{};
  std::string pointer;
};

struct cooldown_rule {
  enum class after : std::uint8_t { shown, dismissed, accepted };
  after kind = after::shown;
  duration length{};
  std::string pointer;
  policies::name_key event_key;  ///< how a scan finds the events of `kind` (action_shown, ...)
};

struct propensity_spec {
  enum class source : std::uint8_t { fixed, model, learn };
  source from = source::fixed;
  double fixed = 1.0;
  std::size_t model = 0;
  double prior_a = 1, prior_b = 1;
};

struct action {
  std::string id;
  std::string pointer;  ///< "/actions/N" or "/fallback"
  std::vector<std::string> channels;
  /// Per channel: the `marketing_<channel>` purpose it needs ("" for none) and its
  /// index in the configured purposes (npos when not configured: never granted).
  std::vector<std::string> channel_purpose;
  std::vector<std::size_t> channel_purpose_index;
  std::vector<std::string> placements;
  std::vector<std::string> requires_names;
  std::vector<std::size_t> requires_index;  ///< purpose indices
  std::optional<std::uint32_t> when, suppress;
  std::vector<std::pair<std::string, scalar>> params;
  double priority = 0, value = 1, weight = 1;
  propensity_spec propensity;
  std::vector<cap> caps;
  std::optional<cap> global_cap;
  std::vector<cooldown_rule> cooldowns;
  std::string payload_json = "null";
  std::string payload_msgpack;

  const scalar* find_param(std::string_view name) const noexcept {
    for (const auto& p : params)
      if (p.first == name)
        return &p.second;
    return nullptr;
  }
};

struct schedule {
  std::string id, on, emit, channel;
  duration after{};
  std::vector<std::string> cancel_on;
};

struct contact_spec {
  std::string pointer = "/contact_policy";
  std::vector<std::string> channels;
  std::uint64_t max = 0;
  duration per{};
};

enum class rank_by : std::uint8_t { expected_value, priority };

/// The whole compiled policy.
struct program {
  std::string version;
  std::string source;
  std::vector<std::string> purposes;
  std::vector<condition> conditions;
  std::vector<segment> segments;
  std::vector<model> models;
  std::vector<action> actions;
  std::optional<action> fallback;
  rank_by ranking = rank_by::expected_value;
  std::size_t max_actions = 1;
  double holdout = 0;
  std::string holdout_salt;
  std::optional<contact_spec> contact;
  std::vector<schedule> schedules;
  /// Unique per compiled program in the process (never 0): a history_memo filled for
  /// one program is not read for another.
  std::uint64_t serial = 0;
  /// What profiles remember of each history event (history_memo), by slot: at most
  /// history_memo::max_conditions matchers. First those of the event conditions that
  /// read an event's texts to match it (a `where`, all of it on fixed values, or a
  /// name whose tag another owns) and sum nothing; then, while slots remain, one per
  /// name that a condition without `where` and `sum` counts or that a `since` looks
  /// for. Each depends on the event alone, so a match holds for good.
  std::vector<memo_matcher> memo;
};

}  // namespace nudge::policies::detail
