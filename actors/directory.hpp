// Profile id → live profile actor. Sharded by id hash; each shard's mutex is held
// only for a look-up, a spawn or a removal, and sends happen under it so that a
// passivating actor can tell for certain that nothing more will reach it.
#pragma once

#include "actors/message.hpp"
#include "storage/profile_table.hpp"

#include <atomic>
#include <memory>

#include <caf/actor.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace nudge::actors {

struct context;

class directory {
public:
  explicit directory(context& ctx) : ctx_(ctx) {}

  /// Sends `env` to the actor of `profile_id`, spawning (activating) it if needed;
  /// a profile merged away in this process forwards to its survivor.
  void dispatch(const std::string& profile_id, envelope_ptr env);

  /// The live actor of `profile_id`, spawned (activated) if needed; for a merge's
  /// survivor to ask a merged-away profile for its state.
  caf::actor actor_for(const std::string& profile_id);

  /// A merge took `from`'s state: `self` (its actor) leaves the directory and what
  /// is dispatched to `from` from now on goes to `to`.
  void forward(const std::string& from, const std::string& to, const caf::actor& self);
  /// The merge did not commit: `from` activates from storage again.
  void unforward(const std::string& from);

  /// Called by a profile actor that wants to leave memory: removes it when `self`
  /// is still the registered actor and `mailbox_empty()` holds under the lock.
  template <class Pred>
  bool remove_if_idle(const std::string& profile_id, const caf::actor& self, Pred mailbox_empty) {
    auto& s = shard_for(profile_id);
    std::lock_guard<std::mutex> guard(s.mtx);
    auto it = s.actors.find(profile_id);
    if (it == s.actors.end() || it->second.actor != self || !mailbox_empty())
      return false;
    drop_locked(s, it);
    return true;
  }

  /// A passivated profile's state waits here until its snapshot is committed, so
  /// that an activation in between starts from it rather than from older storage.
  void park(const std::string& profile_id, std::shared_ptr<const storage::profile_snapshot> snap);
  /// The snapshot committed: forget it (only if it is still `snap`).
  void unpark(const std::string& profile_id, const storage::profile_snapshot* snap);

  bool is_active(const std::string& profile_id) {
    auto& s = shard_for(profile_id);
    std::lock_guard<std::mutex> guard(s.mtx);
    return s.actors.count(profile_id) > 0 || s.parked.count(profile_id) > 0;
  }

  /// Erasure: `self`, the actor of `profile_id`, leaves the directory now and the id
  /// is tombstoned, so that nothing sent to it later (a route resolved just before,
  /// a timer or outbox row read before the erasure committed) re-activates it: such
  /// messages go to ctx.redispatch (resolved afresh) instead.
  void erased(const std::string& profile_id, const caf::actor& self);
  /// The erasure committed: the tombstone is kept for idle_passivate more (far
  /// longer than any such message can be under way), then dropped by sweep_idle().
  void erase_committed(const std::string& profile_id);
  /// The erasure's commit failed (nothing was deleted): lift the tombstone.
  void erase_failed(const std::string& profile_id);
  /// Tombstones held (for /metrics).
  std::uint64_t tombstones() const noexcept { return tombstones_.load(std::memory_order_relaxed); }

  /// Asks each live actor not dispatched to since the previous sweep to check whether
  /// it has been idle for idle_passivate (then it passivates), and drops tombstones
  /// whose time is up. Called every half of idle_passivate, so an idle profile leaves
  /// within 1.5 times that. One shard's lock at a time, sends outside it.
  void sweep_idle();

  /// Asks every live actor to persist and leave (shutdown).
  void passivate_all();
  /// Stops every actor still live, without persisting (shutdown, once passivate_all
  /// had its time): what they acknowledged is in the journal already.
  void stop_all();

  std::uint64_t active() const noexcept { return active_.load(std::memory_order_relaxed); }

private:
  /// Calls f(actor) for every live actor, one shard's lock at a time (shutdown only).
  template <class F>
  void each_live(F f);
  struct live {
    caf::actor actor;
    /// Its place in shard::by_age; by_age.end() once it was asked to leave.
    std::list<const std::string*>::iterator age;
    bool touched = true;                          ///< dispatched to since the last idle sweep
  };
  struct shard {
    std::mutex mtx;
    std::unordered_map<std::string, live> actors;
    /// Keys of the actors not yet asked to leave, oldest activation first. An actor
    /// is asked once (two asks in flight to one actor would be one eviction); one with
    /// messages waiting leaves once it has handled them.
    std::list<const std::string*> by_age;
    std::unordered_map<std::string, std::shared_ptr<const storage::profile_snapshot>> parked;
    std::unordered_map<std::string, std::string> forwards;  ///< merged away → survivor
    std::unordered_set<std::string> erased;
    /// Committed erasures in commit order, with when their tombstone may go.
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> erased_expiry;
  };
  /// The actor of `profile_id` in `s`, spawned if needed; `over` is set when that
  /// spawn passed max_active (evict_one then runs without the lock). Called with s.mtx
  /// held.
  caf::actor& locate_locked(shard& s, const std::string& profile_id, bool& over);
  /// Asks one actor other than `spared` to passivate: the oldest of the next shard
  /// in turn that has one. Takes one shard's lock at a time.
  void evict_one(const std::string& spared);
  /// Removes `it` from `s` (with s.mtx held).
  void drop_locked(shard& s, std::unordered_map<std::string, live>::iterator it);
  shard& shard_for(const std::string& id) { return shards_[std::hash<std::string>{}(id) % shards_.size()]; }

  context& ctx_;
  std::array<shard, 16> shards_;
  std::atomic<std::uint64_t> active_{0};
  std::atomic<std::size_t> evict_turn_{0};
  std::atomic<std::uint64_t> tombstones_{0};
};

}  // namespace nudge::actors
