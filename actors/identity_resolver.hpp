// Identity → profile resolution. The identity index in LMDB is the source of truth;
// links created but not yet committed are kept in a pending map so that two
// messages racing with the same new identity never create two profiles. One mutex
// serialises resolution (a look-up is an in-memory probe or one LMDB read);
// connections cache their last result so the fast path skips this entirely.
//
// This is the simple resolver of the foundation issue: a message whose identities
// name several profiles goes to the one named by its highest-priority identity and
// its other identities are not linked (merging is its own issue).
#pragma once

#include "policies/profile.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace nudge::storage {
class env;
}

namespace nudge::actors {

class identity_resolver {
public:
  explicit identity_resolver(storage::env& env) : env_(env) {}

  struct result {
    std::string profile_id;
    std::vector<policies::identity> added;  ///< the message's identities that belong to this profile
    bool created = false;
  };

  /// `ids` sorted by priority, highest first. Thread-safe.
  result resolve(const std::vector<policies::identity>& ids);

  /// The profile holding `id`, if any (pending links included). Thread-safe.
  std::optional<std::string> find(const policies::identity& id);

  /// The journal committed (or failed to commit) these links: forget them here.
  void settled(const std::vector<policies::identity>& links, const std::string& profile_id);

  /// Connection caches hold a resolution only while generation() is unchanged;
  /// invalidate() (an erasure, a merge) makes every cached resolution stale.
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  void invalidate() noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }

  /// Erasure of `profile_id` begins: its identities read as unknown from now on
  /// (before the erasure commits), so that a new message starts a new profile.
  void forget(const std::vector<policies::identity>& ids, const std::string& profile_id);
  /// The erasure committed: the index no longer holds them; drop the markers.
  void forgotten(const std::vector<policies::identity>& ids);

private:
  static std::string key(const policies::identity& id) { return id.type + '\0' + id.value; }
  std::optional<std::string> find_locked(const policies::identity& id);

  storage::env& env_;
  std::mutex mtx_;
  std::unordered_map<std::string, std::string> pending_;  ///< "" marks a forgotten identity
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace nudge::actors
