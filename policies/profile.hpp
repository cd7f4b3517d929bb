// The profile state that the policy engine evaluates and that the rest of nudge
// stores, merges and serialises. Plain data: no behaviour beyond small look-ups,
// no I/O. Owned by one profile actor at a time; the engine only reads it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace nudge::policies {

/// Wall-clock time at millisecond resolution (all stored times use it).
using timestamp = std::chrono::sys_time<std::chrono::milliseconds>;
using duration = std::chrono::milliseconds;

/// A JSON scalar. Numbers are doubles. Arrays inside properties or traits are kept
/// as their compact JSON text (a string), which `eq`/`ne` compare as text.
using scalar = std::variant<std::monostate, bool, double, std::string>;

/// One property of an event. Nested objects are flattened into dotted paths
/// (`{"a": {"b": 1}}` becomes path "a.b"), which is how WHERE paths address them.
struct property {
  std::string path;
  scalar value;
};

/// An event retained in the profile's history (and the message being decided).
struct event_record {
  std::string id;      ///< the message id (deduplicates histories on merge)
  std::string name;
  timestamp ts{};
  std::string channel;
  std::vector<property> properties;

  /// The property at `path`, or nullptr. Linear: events hold few properties.
  const scalar* find(std::string_view path) const noexcept {
    for (const auto& p : properties)
      if (p.path == path)
        return &p.value;
    return nullptr;
  }
};

struct trait {
  std::string key;
  scalar value;
  timestamp ts{};  ///< latest timestamp wins on update and merge
};

struct name_stats {
  std::string name;
  std::uint64_t count = 0;
  std::vector<std::pair<std::string, double>> sums;  ///< numeric property → sum
};

struct lifetime_stats {
  std::uint64_t events = 0;
  timestamp first_seen{};
  timestamp last_seen{};
  std::vector<name_stats> by_name;
};

/// An action as it went out in a decision.
struct shown_action {
  std::string action;
  std::string channel;
  std::string placement;
};

/// A decision the profile received. Caps, cooldowns (after_shown) and the contact
/// policy are derived from these, so they are kept for the longest window in use.
struct decision_record {
  std::string decision_id;
  std::string request_id;
  timestamp ts{};
  std::string channel;
  std::string placement;
  std::string policy_version;
  std::vector<shown_action> actions;
  bool holdout = false;
  /// The consent purposes the decision relied on (granted at decision time): those
  /// its actions required, plus `personalization` when the profile was personalised.
  std::vector<std::string> relied_on;
};

struct consent_record {
  std::string purpose;
  bool granted = false;
  timestamp ts{};
  std::string source;
  std::optional<timestamp> expires;
};

struct identity {
  std::string type;
  std::string value;  ///< normalised (and `sha256:HEX` when the type is hashed)

  friend bool operator==(const identity&, const identity&) = default;
};

/// A schedule's timer armed for the profile (POLICY.md, Schedules): at most one per
/// schedule; re-arming replaces it.
struct armed_timer {
  std::string schedule_id;
  timestamp due{};
  std::string message_id;  ///< the message that armed it
};

/// Everything a profile holds. History and decisions are oldest first.
struct profile_state {
  std::string id;
  timestamp created_at{};
  timestamp updated_at{};
  std::vector<identity> identities;
  std::vector<std::string> merged_from;
  std::vector<trait> traits;
  lifetime_stats stats;
  std::deque<event_record> history;
  std::deque<decision_record> decisions;
  std::vector<consent_record> consent;  ///< the latest record per purpose
  std::vector<armed_timer> timers;      ///< armed schedules, one per schedule id

  const trait* find_trait(std::string_view key) const noexcept {
    for (const auto& t : traits)
      if (t.key == key)
        return &t;
    return nullptr;
  }
  bool has_identity_type(std::string_view type) const noexcept {
    for (const auto& i : identities)
      if (i.type == type)
        return true;
    return false;
  }
};

}  // namespace nudge::policies
