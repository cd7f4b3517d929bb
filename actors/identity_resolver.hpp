// Identity → profile resolution (API.md section 5). The identity index in LMDB is the
// source of truth; what resolution decided but the journal has not yet committed
// (new links, merges) is kept here as pending entries under a ticket, so that two
// messages racing with overlapping identities never create two profiles for one
// identity. One mutex serialises resolution: a look-up is an in-memory probe plus a
// few LMDB reads, and connections cache their last result (checked against
// generation(), which every merge and erasure bumps), so the fast path skips this.
//
// All members are thread-safe.
#pragma once

#include "policies/profile.hpp"
#include "storage/read_txn.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace nudge::storage {
class env;
}

namespace nudge::actors {

/// The resolution-relevant part of one `[identity.TYPE]`.
struct identity_limit {
  std::string type;
  std::uint32_t limit = 1;  ///< values of this type one profile may hold
};

class identity_resolver {
public:
  identity_resolver(storage::env& env, std::vector<identity_limit> limits);

  struct result {
    std::string profile_id;  ///< the profile that gets the message (a merge's survivor)
    std::vector<policies::identity> added;      ///< the message's identities it holds afterwards
    std::vector<policies::identity> given_up;   ///< links given up for a limit (step 2)
    std::vector<std::string> merged;            ///< profiles to merge into profile_id, oldest first
    std::vector<policies::identity> merged_identities;  ///< the identities the merged profiles held
    bool created = false;
    /// Names the pending entries of this resolution; pass it to settled() once the
    /// message's record committed (or failed, or was never written). 0: nothing pending.
    std::uint64_t ticket = 0;
  };

  /// Resolves a message's identities, `ids` sorted by priority, highest first, at most
  /// one per type, blocked values already dropped.
  result resolve(std::vector<policies::identity> ids);

  /// The (surviving) profile holding `id`, if any, pending links included.
  std::optional<std::string> find(const policies::identity& id);

  /// `profile_id` itself, or the profile it was merged into (following merges).
  std::string canonical(std::string_view profile_id);

  /// The journal committed (or failed to commit, or dropped) what `ticket` reserved:
  /// forget its pending entries; LMDB now answers for it.
  void settled(std::uint64_t ticket);

  /// Bumped by every merge and erasure; a connection's cached resolution taken at an
  /// older generation must be resolved again.
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  void invalidate() noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }

  /// Erasure of `profile_id` begins: from now on no identity resolves to it (nor to
  /// an id merged into it), so that a new message starts a new profile, and cached
  /// resolutions are invalidated. Kept for the life of the process; the committed
  /// erasure removes the index entries themselves.
  void erasing(const std::string& profile_id);
  /// The erasure did not commit: the profile resolves again.
  void erase_failed(const std::string& profile_id);

  std::uint64_t merges() const noexcept { return merges_.load(std::memory_order_relaxed); }
  std::uint64_t given_up() const noexcept { return given_up_.load(std::memory_order_relaxed); }

private:
  struct pending_link {
    std::string profile_id;
    std::uint64_t ticket;
  };
  struct pending_member {
    policies::identity id;
    std::uint64_t ticket;
  };
  struct pending_alias {
    std::string survivor;
    std::uint64_t ticket;
  };

  /// What one ticket reserved, so that settled() removes exactly that.
  struct reservation {
    std::vector<std::string> links;    ///< keys in links_
    std::vector<std::string> members;  ///< profile ids in members_
    std::vector<std::string> aliases;  ///< merged ids in aliases_
  };

  /// A read transaction opened on first use: an answer from memory needs none.
  class lazy_read {
  public:
    explicit lazy_read(storage::env& env) : env_(env) {}
    storage::read_txn& operator*();
  private:
    storage::env& env_;
    std::optional<storage::read_txn> txn_;
  };

  static std::string key(const policies::identity& id) { return id.type + '\0' + id.value; }
  /// key(id) in the calling thread's buffer, for a lookup: no allocation once the
  /// buffer has grown; valid until the thread's next call.
  static const std::string& lookup_key(const policies::identity& id) {
    thread_local std::string k;
    k.assign(id.type);
    k.push_back('\0');
    k.append(id.value);
    return k;
  }
  std::optional<std::string> owner_locked(lazy_read& tx, const policies::identity& id);
  std::string canonical_locked(lazy_read& tx, std::string_view profile_id);
  std::vector<policies::identity> members_locked(lazy_read& tx, const std::string& profile_id);
  bool over_limit_locked(lazy_read& tx, const std::vector<std::string>& profiles,
                         const std::vector<policies::identity>& ids);
  std::uint32_t limit_of(std::string_view type) const;

  storage::env& env_;
  std::vector<identity_limit> limits_;
  std::mutex mtx_;
  std::uint64_t next_ticket_ = 1;
  std::unordered_map<std::string, pending_link> links_;
  std::unordered_map<std::string, std::vector<pending_member>> members_;
  std::unordered_map<std::string, pending_alias> aliases_;
  std::unordered_map<std::uint64_t, reservation> tickets_;
  std::unordered_set<std::string> erased_;  ///< profiles erased in this process
  /// Settled answers of the index (identity key → canonical profile), so that a known
  /// identity costs no LMDB read. Valid for one generation: every merge and erasure
  /// clears it. Only answers that no pending entry shaped are kept; bounded.
  std::unordered_map<std::string, std::string> settled_;
  std::uint64_t settled_generation_ = 0;
  std::atomic<std::uint64_t> generation_{1};
  std::atomic<std::uint64_t> merges_{0};
  std::atomic<std::uint64_t> given_up_{0};
};

}  // namespace nudge::actors
