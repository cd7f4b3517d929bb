// The profile state that the policy engine evaluates and that the rest of nudge
// stores, merges and serialises. Plain data: no behaviour beyond small look-ups,
// no I/O. Owned by one profile actor at a time; the engine only reads it, except
// for the history memo, a cache that decisions fill (history_memo).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "policies/packed_strings.hpp"
#include "policies/record_log.hpp"

namespace nudge::policies {

/// Wall-clock time at millisecond resolution (all stored times use it).
using timestamp = std::chrono::sys_time<std::chrono::milliseconds>;
using duration = std::chrono::milliseconds;

/// A JSON scalar. Numbers are doubles. Arrays inside properties or traits are kept
/// as their compact JSON text (a string), which `eq`/`ne` compare as text.
using scalar = std::variant<std::monostate, bool, double, std::string>;

/// A scalar as a view: what a compact record answers (the string is a view into the
/// record, valid while it lives unchanged).
using scalar_view = std::variant<std::monostate, bool, double, std::string_view>;

inline scalar_view view_of(const scalar& s) noexcept {
  switch (s.index()) {
    case 1:
      return std::get<bool>(s);
    case 2:
      return std::get<double>(s);
    case 3:
      return std::string_view(std::get<std::string>(s));
    default:
      return std::monostate{};
  }
}

/// The scalar that owns a copy of `v`.
inline scalar to_scalar(const scalar_view& v) {
  if (const auto* s = std::get_if<std::string_view>(&v))
    return std::string(*s);
  if (const auto* b = std::get_if<bool>(&v))
    return *b;
  if (const auto* d = std::get_if<double>(&v))
    return *d;
  return std::monostate{};
}

/// One property of an event. Nested objects are flattened into dotted paths
/// (`{"a": {"b": 1}}` becomes path "a.b"), which is how WHERE paths address them.
struct property {
  std::string path;
  scalar value;
};

struct property_view {
  std::string_view path;
  scalar_view value;
};

/// An event retained in the profile's history (and the message being decided).
/// Compact: the time and one block with the id, name, channel and every property's
/// path and encoded value (a profile keeps up to history_max_events of these,
/// docs/BENCHMARKS.md scenario 3). Immutable once built.
/// A 16-bit digest of a text (FNV-1a, folded): equal texts, equal tags. Records keep
/// tags of the names that scans look for beside their time, so that a scan reads a
/// record's texts (on the heap) only when the tag matches.
constexpr std::uint16_t text_tag(std::string_view text) noexcept {
  std::uint32_t h = 2166136261u;
  for (char c : text)
    h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return static_cast<std::uint16_t>(h ^ (h >> 16));
}

/// How a scan finds the events with one name: the tag those events carry, and whether
/// that tag names only them.
///
/// An event's tag is the 15-bit digest of its name (text_tag), and bit 15 when the
/// name owns that digest's slot in the process-wide vocabulary (packed_strings.hpp):
/// the first text seen with a digest claims the slot for the life of the process, so
/// a tag with bit 15 stands for exactly one name. A scan for an owning name then
/// matches tags alone and reads no record's text; one for a name whose slot another
/// text owns compares the name of each record whose tag matches (a record named so
/// never carries bit 15). The vocabulary holds at most 32,768 texts, one per slot,
/// each kept until exit; the empty name and names over 64 bytes claim none.
struct name_key {
  static constexpr std::uint16_t exact_bit = 0x8000;
  std::uint16_t tag = 0;
  bool exact = false;  ///< `tag` names only this name

  /// The key of `name`, claiming its slot when free.
  static name_key of(std::string_view name);
  /// Whether an event with this tag and this name is named so (the name is read only
  /// when the tag cannot tell).
  template <class Record>
  bool names(const Record& r, std::string_view name) const noexcept {
    return r.name_tag() == tag && (exact || r.name() == name);
  }
  /// Whether an event with this tag may be named so (for prefetching).
  bool may_name(std::uint16_t record_tag) const noexcept { return record_tag == tag; }
};

class event_record {
public:
  event_record() = default;
  event_record(std::string_view id, std::string_view name, timestamp ts, std::string_view channel,
               std::span<const property> properties);
  event_record(std::string_view id, std::string_view name, timestamp ts, std::string_view channel,
               std::span<const property_view> properties);

  /// Milliseconds, within ±2^47 of the epoch (±4,400 years; outside, clamped).
  timestamp ts() const noexcept { return timestamp(std::chrono::milliseconds(stamp_ >> 16)); }
  std::string_view id() const noexcept { return text(0); }  ///< the message id (deduplicates histories on merge)
  std::string_view name() const noexcept { return text(1); }
  std::string_view channel() const noexcept { return text(2); }
  /// name_key::of(name()).tag, kept beside the time: a scan of the history for one
  /// name compares it first and reads the text (on the heap) only when it must.
  std::uint16_t name_tag() const noexcept { return static_cast<std::uint16_t>(stamp_ & 0xffff); }
  /// The tag of events named `name`: equal names, equal tags.
  static std::uint16_t name_tag_of(std::string_view name) { return name_key::of(name).tag; }

  std::size_t property_count() const noexcept { return text_.empty() ? 0 : (text_.size() - fixed) / 2; }
  property_view property_at(std::size_t i) const noexcept {
    return {text_[fixed + 2 * i], decode(text_[fixed + 2 * i + 1])};
  }
  /// The property at `path`, if the event has one. Linear: events hold few properties.
  std::optional<scalar_view> find(std::string_view path) const noexcept {
    for (std::size_t i = 0, n = property_count(); i < n; ++i)
      if (text_[fixed + 2 * i] == path)
        return decode(text_[fixed + 2 * i + 1]);
    return std::nullopt;
  }

  /// Bytes this record holds on the heap.
  std::size_t heap_bytes() const noexcept { return text_.block_bytes(); }
  /// packed_strings::prefetch() of its texts.
  void prefetch() const noexcept { text_.prefetch(); }

private:
  static constexpr std::size_t fixed = 3;  // id, name, channel
  std::string_view text(std::size_t i) const noexcept { return text_.empty() ? std::string_view{} : text_[i]; }
  /// A value is stored as a tag byte ('n', 't', 'f', 'd', 's') and its bytes.
  static scalar_view decode(std::string_view v) noexcept;
  static std::int64_t stamp(timestamp ts, std::string_view name);

  std::int64_t stamp_ = text_tag({}) & 0x7fff;  ///< ts() in ms in the upper 48 bits, name_tag() below
  packed_strings text_;  // id, name, channel, then path and value per property
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

/// An action as it went out in a decision (views into the record that holds it).
struct shown_action {
  std::string_view action;
  std::string_view channel;
  std::string_view placement;
};

/// A decision the profile received. Caps, cooldowns (after_shown) and the contact
/// policy are derived from these, so they are kept for the longest window in use.
/// Compact: the time, the holdout flag and one block with every text (a profile keeps
/// tens of these, docs/BENCHMARKS.md scenario 3). Immutable once built.
class decision_record {
public:
  decision_record() = default;
  /// `relied_on`: the consent purposes the decision relied on (granted at decision
  /// time): those its actions required, plus `personalization` when the profile was
  /// personalised.
  decision_record(std::string_view decision_id, std::string_view request_id, timestamp ts,
                  std::string_view channel, std::string_view placement, std::string_view policy_version,
                  std::span<const shown_action> actions, bool holdout,
                  std::span<const std::string_view> relied_on);

  timestamp ts() const noexcept { return ts_; }
  bool holdout() const noexcept { return holdout_; }
  std::string_view decision_id() const noexcept { return text(0); }
  std::string_view request_id() const noexcept { return text(1); }
  std::string_view channel() const noexcept { return text(2); }
  std::string_view placement() const noexcept { return text(3); }
  std::string_view policy_version() const noexcept { return text(4); }

  std::size_t action_count() const noexcept { return actions_; }
  shown_action action(std::size_t i) const noexcept {
    return {text_[fixed + 3 * i], text_[fixed + 3 * i + 1], text_[fixed + 3 * i + 2]};
  }
  /// The bit of action_bits() that a shown action `action_id` sets.
  static constexpr std::uint16_t action_bit(std::string_view action_id) noexcept {
    return static_cast<std::uint16_t>(1u << (text_tag(action_id) & 15u));
  }
  /// The action_bit() of each shown action, or-ed: a cheap "maybe shows".
  std::uint16_t action_bits() const noexcept { return action_bits_; }
  /// Whether one of its actions is `action_id`.
  bool shows(std::string_view action_id) const noexcept { return shows(action_id, action_bit(action_id)); }
  /// The same, with `bit` = action_bit(action_id) computed once for a scan.
  bool shows(std::string_view action_id, std::uint16_t bit) const noexcept {
    if ((action_bits_ & bit) == 0)
      return false;
    for (std::size_t i = 0; i < actions_; ++i)
      if (text_[fixed + 3 * i] == action_id)
        return true;
    return false;
  }

  std::size_t relied_on_count() const noexcept {
    return text_.empty() ? 0 : text_.size() - fixed - 3 * actions_;
  }
  std::string_view relied_on(std::size_t i) const noexcept { return text_[fixed + 3 * actions_ + i]; }

  /// Bytes this record holds on the heap.
  std::size_t heap_bytes() const noexcept { return text_.block_bytes(); }

private:
  static constexpr std::size_t fixed = 5;  // decision_id .. policy_version
  std::string_view text(std::size_t i) const noexcept { return text_.empty() ? std::string_view{} : text_[i]; }

  timestamp ts_{};
  packed_strings text_;  // the five fixed texts, 3 per action, then relied_on
  std::uint32_t actions_ = 0;
  bool holdout_ = false;
  std::uint16_t action_bits_ = 0;  // in what would be padding
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

/// What a compiled policy's memo conditions (detail::program::memo: event conditions
/// whose match reads an event's texts, a `where` on fixed values or a name whose tag
/// another name owns, and that sum nothing) answered for each history event: bit s
/// of a mask is whether memo condition s matches it. Each event is matched once per
/// condition instead of at every decision. Masks are kept by the event's ordinal
/// (profile_state::history_base + index): appends and drops from the front keep an
/// event's ordinal, and every other change starts a new range past the old end, so
/// a mask never describes another event. A cache that the evaluator fills: copies
/// start empty, and it is not synchronised (the profile's owner decides).
class history_memo {
public:
  static constexpr std::size_t max_conditions = 8;

  history_memo() = default;
  history_memo(const history_memo&) noexcept {}
  history_memo& operator=(const history_memo& other) noexcept {
    if (this != &other)
      clear();
    return *this;
  }
  history_memo(history_memo&&) noexcept = default;
  history_memo& operator=(history_memo&&) noexcept = default;

  void clear() noexcept {
    program = 0;
    first = 0;
    masks.clear();
  }

  std::uint64_t program = 0;         ///< the serial of the program the masks answer (0: none)
  std::uint64_t first = 0;           ///< the ordinal of masks.front()
  std::vector<std::uint8_t> masks;   ///< per event from `first` on, oldest first
};

/// An accepted message, as the profile's idempotency memory keeps it: a stable hash
/// of its source and id, and when it was accepted (which locates its stored reply).
struct seen_message {
  std::uint64_t key_hash = 0;
  timestamp ts{};
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
  record_log<event_record> history;  ///< at most history_max_events, oldest first
  record_log<decision_record> decisions;  ///< at most decisions_max, oldest first
  /// The ordinal of decisions.front(): how many decisions the log has dropped from its
  /// front since it began, or the old log's end after a merge or a clear rebuilt it (a
  /// new range). Appends and drops from the front keep the other decisions' ordinals;
  /// storage keeps the log in chunks numbered by them (storage/profile_table.hpp).
  std::uint64_t decisions_base = 0;
  /// The ordinal of history.front(), as decisions_base: drops from the front advance
  /// it; a clear, a merge or an event inserted before the newest (the history is in
  /// time order) start a new range after the old end.
  std::uint64_t history_base = 0;
  std::vector<consent_record> consent;  ///< the latest record per purpose
  std::vector<armed_timer> timers;      ///< armed schedules, one per schedule id
  /// The messages accepted within the dedupe window, oldest first, up to a bound;
  /// past it, until `seen_spill_until`, ids are also kept by id (actors/profile_logic).
  std::vector<seen_message> seen;
  timestamp seen_spill_until{};
  /// The ordinal of seen.front(), as history_base: drops from the front advance it; a
  /// merge starts a new range after the old end. Storage keeps the seen messages in
  /// chunks numbered by it, so that a snapshot rewrites only the newest.
  std::uint64_t seen_base = 0;
  /// Filled by decisions, never stored; see history_memo.
  mutable history_memo memo;

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
