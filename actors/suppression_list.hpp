// The suppression list as the gateway and the profile actors use it: the keyed hash
// of an identity (HMAC-SHA256 under a secret kept in the data dir, so that the list
// holds no identity and cannot be checked against guesses without the secret), and
// the look-up of a message's identities before any profile is resolved or created.
//
// Thread-safe; contains_any() does one short LMDB read per identity, and none at all
// while the list is empty (the common case).
#pragma once

#include "policies/profile.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace nudge::storage {
class env;
}

namespace nudge::actors {

class suppression_list {
public:
  /// `key`: the HMAC secret (non-empty). Counts the stored hashes once.
  suppression_list(storage::env& env, std::string key);

  /// HMAC-SHA256(key, type + '\0' + value), 32 raw bytes.
  std::string hash(const policies::identity& id) const;

  /// Whether any of `ids` is suppressed. A failed read counts as not suppressed
  /// (logged), so that a storage fault does not silently drop traffic.
  bool contains_any(const std::vector<policies::identity>& ids) const;

  /// The writer committed `n` more hashes (any thread).
  void added(std::uint64_t n) { size_.fetch_add(n, std::memory_order_relaxed); }

  std::uint64_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

private:
  storage::env& env_;
  std::string key_;
  std::atomic<std::uint64_t> size_{0};
};

}  // namespace nudge::actors
