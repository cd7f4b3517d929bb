// A compiled, immutable policy (POLICY.md) and the one call that evaluates it.
//
// compile() parses and validates a policy document once; every path, duration,
// segment and model reference is resolved there, and payloads are serialised there
// (JSON text and MessagePack). A compiled policy is shared as
// std::shared_ptr<const policy>: any thread may call decide() on it concurrently.
// The library is pure: no I/O, no clock, no global state. Everything shared
// between profiles (global caps, learned propensities) comes in through
// `shared_counters`, implemented by the caller.
#pragma once

#include "policies/profile.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nudge::policies {

/// The decisions a profile keeps (actors::profile_options::decisions_max): the caps and
/// the contact policy count them, so neither may ask for more.
inline constexpr std::uint64_t decisions_kept = 200;

/// What validation checks a policy against (from the service's config).
struct policy_limits {
  /// Configured consent purposes, in config order. Consent bits passed to
  /// decide() are indexed the same way.
  std::vector<std::string> purposes{"analytics", "personalization", "marketing_email",
                                    "marketing_sms", "marketing_push"};
  /// Configured identity types (for `{"identity": TYPE}`); empty: any.
  std::vector<std::string> identity_types;
  /// Known channels (sources' and destinations' channels); empty: any.
  std::vector<std::string> channels;
  /// The largest `max` of a `cap` or of the `contact_policy`: what a profile's decision
  /// log can count (a larger one would never be full).
  std::uint64_t decisions_kept = policies::decisions_kept;
};

/// One validation problem: a JSON pointer into the policy document and what is wrong.
struct problem {
  std::string path;
  std::string message;
};

class policy;

struct compile_result {
  std::shared_ptr<const policy> compiled;  ///< null when problems is not empty
  std::vector<problem> problems;           ///< every problem found, not just the first
};

/// Parses, validates and compiles. Never throws.
compile_result compile(std::string_view json, const policy_limits& limits);

/// State shared across all profiles, owned by the caller (an actor), thread-safe.
class shared_counters {
public:
  virtual ~shared_counters() = default;
  /// Reserves one use of `action_index`'s global_cap in the window ending at `now`.
  /// Returns false when the cap is full. Called only for actions about to be returned.
  virtual bool try_reserve_global(std::size_t action_index, timestamp now) = 0;
  /// Whether the global cap has room (no reservation); used for eligibility/explain.
  virtual bool global_available(std::size_t action_index, timestamp now) = 0;
  /// Learned feedback counts for a `learn` propensity: successes and failures.
  virtual std::pair<double, double> learned(std::size_t action_index) = 0;
};

/// Why an action was not eligible (API.md section 3, `explain`). decide() checks in
/// the order wrong_channel, wrong_placement, consent_missing, condition_false,
/// suppressed, capped, cooldown, global_capped, contact_policy, holdout; the first
/// that applies is reported. Pointers are RFC 6901 pointers into the document.
enum class reason {
  eligible,          ///< chosen (or, for the fallback, returned)
  /// detail: pointer of the deepest condition that made `when` false: descends
  /// into the first false child of `all` and into a referenced segment's definition
  /// ("/actions/1/when/all/0", "/segments/cart_left/all/1"); stops at an `any` whose
  /// children are all false, at a `not`, and at every other shape.
  condition_false,
  /// detail: pointer of what made `suppress` hold: descends into the first true
  /// child of `any` and into segments; stops at `all`, `not` and other shapes.
  suppressed,
  consent_missing,   ///< detail: the purpose (a `requires` entry or marketing_<channel>)
  capped,            ///< detail: pointer of the full cap ("/actions/1/cap/0")
  cooldown,          ///< detail: pointer of the running one ("/actions/1/cooldown/after_dismissed")
  global_capped,     ///< shared_counters said no (availability or reservation)
  contact_policy,    ///< detail: "/contact_policy"
  lost_arbitration,  ///< eligible but ranked out (for the fallback: an action was chosen)
  wrong_channel,     ///< detail: the request's channel
  wrong_placement,   ///< detail: the request's placement
  holdout,           ///< eligible, but the profile is in the control group
};
std::string_view to_string(reason r) noexcept;

struct explain_entry {
  std::string_view action;
  reason why = reason::eligible;
  std::string detail;
};

/// A compiled action, as decide() returns it.
struct action_view {
  std::size_t index = 0;          ///< position in `actions`; the fallback is action_count()
  std::string_view id;
  std::string_view payload_json;  ///< compact JSON text, "null" when absent
  std::string_view payload_msgpack;
  std::span<const std::string> required_purposes;  ///< the action's `requires`
};

/// Views into the compiled policy, except `placement` when the request named a
/// placement that the action does not list (an action without placements): then it
/// views the request's string.
///
/// Defaults: a missing `propensity` is 1.0, `value` 1.0, `weight` 1.0, `priority` 0;
/// a `learn` propensity without counters is the prior mean A / (A + B).
struct chosen_action {
  action_view action;
  double score = 0;             ///< expected value = propensity × value × weight
  std::string_view channel;     ///< the decision's channel
  std::string_view placement;   ///< the decision's placement, else the action's first, else ""
};

struct decide_request {
  const profile_state* profile = nullptr;  ///< current event already applied, if retained
  /// The profile whose decision log (and feedback events) the caps, cooldowns and the
  /// contact policy count; null: `profile`. They hold whatever the consent: a profile
  /// decided on without `personalization` reads as empty to conditions (`profile` is
  /// then a blank view) but must not escape its limits.
  const profile_state* limits = nullptr;
  const event_record* current = nullptr;   ///< the message being decided (null for `decide`)
  std::string_view channel;
  std::string_view placement;              ///< empty: any
  timestamp now{};
  const std::vector<bool>* consent = nullptr;  ///< granted per limits.purposes index
  bool explain = false;
  shared_counters* counters = nullptr;     ///< null: no global caps, learn uses the prior mean
  std::uint64_t random_seed = 0;           ///< Thompson sampling draws from this seed
};

struct decision {
  std::vector<chosen_action> actions;
  bool holdout = false;
  std::vector<explain_entry> explain;  ///< every action and the fallback, when asked
};

/// A `schedules` entry (POLICY.md, Schedules); views into the compiled policy.
struct schedule_view {
  std::string_view id, on, emit, channel;
  duration after{};
  std::vector<std::string_view> cancel_on;
};

/// An action's `global_cap`: at most `max` uses across all profiles per `per`.
struct global_cap_view {
  std::uint64_t max = 0;
  duration per{};
};

/// What the caller may need to know about one compiled action (or the fallback);
/// views into the compiled policy, valid while it lives.
struct action_info {
  action_view action;
  std::vector<std::string_view> channels;
  std::vector<std::string_view> placements;         ///< empty: any placement
  std::optional<global_cap_view> global_cap;
  bool learns = false;  ///< propensity is `learn`: feed shown/accepted/dismissed counts
};

class policy {
public:
  virtual ~policy() = default;
  virtual std::string_view version() const noexcept = 0;
  /// The document as activated (compact JSON), for GET /v1/policy and persistence.
  virtual std::string_view source() const noexcept = 0;
  virtual std::size_t action_count() const noexcept = 0;
  /// Index of an action id (for feedback validation and learned counts), or npos.
  /// The fallback's id answers action_count().
  virtual std::size_t find_action(std::string_view id) const noexcept = 0;
  /// The longest window any cap, cooldown or contact policy looks back, so that the
  /// caller knows how long decision records must be kept.
  virtual duration longest_window() const noexcept = 0;
  /// Evaluates the policy for one request (POLICY.md). Thread-safe, never throws
  /// (beyond std::bad_alloc), reads no clock: time is req.now. req.profile must not
  /// be null (null: an empty decision); its history and decisions must be oldest
  /// first (by ts), which lets windows stop scanning early. Calls
  /// req.counters->try_reserve_global only for an action with a global_cap that is
  /// about to be returned.
  virtual decision decide(const decide_request& req) const = 0;

  // Additions (defaults keep test doubles of this interface compiling).

  /// Whether the policy has a `fallback`; its index is action_count().
  virtual bool has_fallback() const noexcept { return false; }
  /// The action at `index` (action_count() for the fallback), or nullopt.
  virtual std::optional<action_info> describe(std::size_t index) const {
    (void)index;
    return std::nullopt;
  }
  /// The policy's schedules, in document order; valid while the policy lives (built
  /// once: callers read them for every event).
  virtual const std::vector<schedule_view>& schedules() const noexcept {
    static const std::vector<schedule_view> none;
    return none;
  }
};

}  // namespace nudge::policies
