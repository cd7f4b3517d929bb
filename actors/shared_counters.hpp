// State shared by every profile: global caps (reservations in a sliding window),
// learned propensities (accepted vs dismissed/unanswered counts per action) and the
// holdout groups' acceptance. Keyed by action id, so a policy swap keeps the counts
// of actions that stay. Thread-safe; profile actors call it while deciding.
//
// Persistence: the journal writer collects changed entries with take_dirty() at each
// commit and writes them in it (meta keys "counter:<action>" and "holdout_stats"), so
// in the commit of the decision or feedback that changed them or an earlier one (a
// commit may take a change whose own record commits next); load() reads them back.
#pragma once

#include "policies/policy.hpp"

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace nudge::storage {
class env;
}

namespace nudge::actors {

class counter_store {
public:
  /// The policies::shared_counters view of one policy version (its action indexes).
  std::shared_ptr<policies::shared_counters> view(const std::shared_ptr<const policies::policy>& pol);

  /// Feedback for `action`: accepted is a success; dismissed, and shown without a
  /// later answer, are failures. `holdout` is the group of the decision it answers.
  void feedback(const std::string& action, const std::string& outcome, bool holdout);
  /// A decision was made for a profile in the given group.
  void decided(bool holdout);

  /// Appends the meta-table entries changed since the last call to `out`: the
  /// journal's meta source (journal::on_meta), so once per commit, not per message.
  void take_dirty(std::vector<std::pair<std::string, std::string>>& out);
  /// Reads every stored counter (call once at start, before serving).
  void load(storage::env& env, const policies::policy& pol);

  /// {"control": {...}, "treatment": {...}} acceptance figures as JSON.
  std::string holdout_json() const;

  struct entry {
    std::mutex mtx;
    std::deque<policies::timestamp> reservations;
    std::uint64_t shown = 0, accepted = 0, dismissed = 0;
    bool dirty = false;
  };
  entry& slot(const std::string& action);

private:
  mutable std::mutex mtx_;
  std::unordered_map<std::string, std::unique_ptr<entry>> entries_;
  std::vector<std::string> dirty_ids_;
  std::uint64_t decisions_[2] = {0, 0};  ///< [treatment, control]
  std::uint64_t accepted_[2] = {0, 0};
  bool holdout_dirty_ = false;
  std::shared_ptr<policies::shared_counters> cached_view_;
  const policies::policy* cached_for_ = nullptr;

  friend class counters_view;
  void mark_dirty(const std::string& action);
};

}  // namespace nudge::actors
