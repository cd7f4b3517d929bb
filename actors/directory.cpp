#include <utility>

#include "actors/directory.hpp"

#include "actors/context.hpp"
#include "actors/profile_actor.hpp"
#include "actors/type_ids.hpp"

#include <caf/send.hpp>

namespace nudge::actors {

void directory::dispatch(const std::string& profile_id, envelope_ptr env) {
  auto& s = shard_for(profile_id);
  caf::actor evict;
  {
    std::unique_lock<std::mutex> guard(s.mtx);
    if (s.erased.count(profile_id) > 0) {
      guard.unlock();
      if (ctx_.redispatch)
        ctx_.redispatch(std::move(env));
      return;
    }
    auto it = s.actors.find(profile_id);
    if (it == s.actors.end()) {
      std::shared_ptr<const storage::profile_snapshot> parked;
      if (auto p = s.parked.find(profile_id); p != s.parked.end())
        parked = p->second;
      it = s.actors.emplace(profile_id, spawn_profile(ctx_, profile_id, std::move(parked))).first;
      // Past max_active, one other actor of this shard is asked to leave.
      if (active_.fetch_add(1, std::memory_order_relaxed) + 1 > ctx_.options.max_active)
        for (auto& [id, a] : s.actors)
          if (id != profile_id) {
            evict = a;
            break;
          }
    }
    caf::anon_send(it->second, apply_atom_v, std::move(env));
  }
  if (evict)
    caf::anon_send(evict, passivate_atom_v);
}

void directory::park(const std::string& profile_id, std::shared_ptr<const storage::profile_snapshot> snap) {
  auto& s = shard_for(profile_id);
  std::lock_guard<std::mutex> guard(s.mtx);
  s.parked[profile_id] = std::move(snap);
}

void directory::unpark(const std::string& profile_id, const storage::profile_snapshot* snap) {
  auto& s = shard_for(profile_id);
  std::lock_guard<std::mutex> guard(s.mtx);
  if (auto it = s.parked.find(profile_id); it != s.parked.end() && it->second.get() == snap)
    s.parked.erase(it);
}

void directory::erased(const std::string& profile_id, const caf::actor& self) {
  auto& s = shard_for(profile_id);
  std::lock_guard<std::mutex> guard(s.mtx);
  s.erased.insert(profile_id);
  s.parked.erase(profile_id);
  if (auto it = s.actors.find(profile_id); it != s.actors.end() && it->second == self) {
    s.actors.erase(it);
    active_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void directory::erase_failed(const std::string& profile_id) {
  auto& s = shard_for(profile_id);
  std::lock_guard<std::mutex> guard(s.mtx);
  s.erased.erase(profile_id);
}

void directory::passivate_all() {
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> guard(s.mtx);
    for (auto& [id, a] : s.actors)
      caf::anon_send(a, passivate_atom_v);
  }
}

}  // namespace nudge::actors
