// Evaluates compiled conditions and models against one request. An evaluator lives
// for one decide() call: it caches segment results (those that read no `$param`)
// and model scores, so each is computed at most once per decision. Not thread-safe;
// cheap to construct (it fills two small vectors of a reused evaluator_scratch).
#pragma once

#include "policies/detail/compiled.hpp"
#include "policies/policy.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nudge::policies::detail {

/// `actual OP value` with the policy's rules: numbers numerically, strings by
/// equality (order: lexicographic), a type mismatch is false (also for `ne`), a
/// missing value (nullopt) is false except for `exists: false`.
bool compare(const std::optional<scalar_view>& actual, const comparison& c) noexcept;
bool compare(double actual, const comparison& c) noexcept;

/// The caches' storage, reused from decision to decision (decide() keeps one per
/// thread) so that an evaluator allocates nothing once they have grown.
struct evaluator_scratch {
  std::vector<std::int8_t> segments;
  std::vector<double> models;
};

class evaluator {
public:
  /// `prog`, `req`, `*req.profile` and `scratch` must outlive the evaluator; one
  /// evaluator uses `scratch` at a time.
  evaluator(const program& prog, const decide_request& req, evaluator_scratch& scratch);

  /// The action whose params `$param` reads (null: none, `$param` never matches).
  void set_action(const action* a) noexcept { action_ = a; }

  bool eval(std::uint32_t cond);
  /// The JSON pointer of the deepest condition that makes `cond` evaluate to `value`:
  /// the first failing child of an `all`, the first holding child of an `any`, the
  /// definition of a referenced segment; other shapes (including `not`) are leaves.
  const std::string& blame(std::uint32_t cond, bool value);
  /// The logistic score of model `index`.
  double score(std::size_t index);

private:
  double measure(const condition& c);
  /// The index of the oldest history event inside `c`'s window (`within`, `since`).
  std::size_t window_start(const condition& c);
  /// Brings the profile's history_memo up to its history for this program, once per
  /// evaluator: drops the masks of events gone from the front, matches the events
  /// added since (or all, for a new range or another program).
  void sync_memo();
  bool matches(const event_record& e, const std::vector<where_entry>& where) const;
  bool eval_segment(std::size_t index);

  const program& prog_;
  const decide_request& req_;
  const profile_state& profile_;
  const action* action_ = nullptr;
  std::vector<std::int8_t>& segment_cache_;  ///< -1 unknown, 0 false, 1 true
  std::vector<double>& model_cache_;         ///< NaN: unknown
  bool memo_synced_ = false;
};

}  // namespace nudge::policies::detail
