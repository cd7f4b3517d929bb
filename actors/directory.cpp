#include <utility>

#include "actors/directory.hpp"

#include "actors/context.hpp"
#include "actors/local_unit.hpp"
#include "actors/profile_actor.hpp"
#include "actors/type_ids.hpp"

#include <caf/send.hpp>

#include <vector>

namespace nudge::actors {

caf::actor& directory::locate_locked(shard& s, const std::string& profile_id, bool& over) {
  auto it = s.actors.find(profile_id);
  if (it == s.actors.end()) {
    std::shared_ptr<const storage::profile_snapshot> parked;
    if (auto p = s.parked.find(profile_id); p != s.parked.end())
      parked = p->second;
    it = s.actors.emplace(profile_id, live{spawn_profile(ctx_, profile_id, std::move(parked)), {}}).first;
    it->second.age = s.by_age.insert(s.by_age.end(), &it->first);
    over = active_.fetch_add(1, std::memory_order_relaxed) + 1 > ctx_.options.max_active;
  }
  it->second.touched = true;
  return it->second.actor;
}

void directory::evict_one(const std::string& spared) {
  // The shards take turns, so that none is drained while others stay full; in each,
  // the oldest actor goes first.
  for (std::size_t k = 0; k < shards_.size(); ++k) {
    auto& s = shards_[evict_turn_.fetch_add(1, std::memory_order_relaxed) % shards_.size()];
    caf::actor victim;
    {
      std::lock_guard<std::mutex> guard(s.mtx);
      if (s.by_age.empty() || *s.by_age.front() == spared)
        continue;
      auto& oldest = s.actors.find(*s.by_age.front())->second;
      victim = oldest.actor;
      s.by_age.pop_front();
      oldest.age = s.by_age.end();
    }
    caf::anon_send(victim, passivate_atom_v);
    return;
  }
}

void directory::drop_locked(shard& s, std::unordered_map<std::string, live>::iterator it) {
  if (it->second.age != s.by_age.end())
    s.by_age.erase(it->second.age);
  s.actors.erase(it);
  active_.fetch_sub(1, std::memory_order_relaxed);
}

void directory::dispatch(const std::string& profile_id, envelope_ptr env) {
  // Copied only when a forward is followed (its entry may go once the lock is left).
  std::string followed;
  const std::string* target = &profile_id;
  // Merges form chains toward ever older ids; the bound only guards against a bug.
  for (int hops = 0; hops < 64; ++hops) {
    auto& s = shard_for(*target);
    bool over = false;
    {
      std::unique_lock<std::mutex> guard(s.mtx);
      if (auto f = s.forwards.find(*target); f != s.forwards.end()) {
        followed = f->second;
        target = &followed;
        continue;
      }
      if (s.erased.count(*target) > 0) {
        guard.unlock();
        if (env->msg.kind == message_kind::checkpoint)
          return;  // nothing of it is left to snapshot
        if (ctx_.redispatch)
          ctx_.redispatch(std::move(env));
        return;
      }
      send_here(locate_locked(s, *target, over), apply_atom_v, std::move(env));
    }
    if (over)
      evict_one(*target);
    return;
  }
}

caf::actor directory::actor_for(const std::string& profile_id) {
  auto& s = shard_for(profile_id);
  bool over = false;
  caf::actor out;
  {
    std::lock_guard<std::mutex> guard(s.mtx);
    out = locate_locked(s, profile_id, over);
  }
  if (over)
    evict_one(profile_id);
  return out;
}

void directory::forward(const std::string& from, const std::string& to, const caf::actor& self) {
  auto& s = shard_for(from);
  std::lock_guard<std::mutex> guard(s.mtx);
  if (auto it = s.actors.find(from); it != s.actors.end() && it->second.actor == self)
    drop_locked(s, it);
  s.forwards[from] = to;
}

void directory::unforward(const std::string& from) {
  auto& s = shard_for(from);
  std::lock_guard<std::mutex> guard(s.mtx);
  s.forwards.erase(from);
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
  if (s.erased.insert(profile_id).second)
    tombstones_.fetch_add(1, std::memory_order_relaxed);
  s.parked.erase(profile_id);
  if (auto it = s.actors.find(profile_id); it != s.actors.end() && it->second.actor == self)
    drop_locked(s, it);
}

void directory::erase_committed(const std::string& profile_id) {
  auto& s = shard_for(profile_id);
  std::lock_guard<std::mutex> guard(s.mtx);
  s.erased_expiry.emplace_back(std::chrono::steady_clock::now() + ctx_.options.idle_passivate, profile_id);
}

void directory::erase_failed(const std::string& profile_id) {
  auto& s = shard_for(profile_id);
  std::lock_guard<std::mutex> guard(s.mtx);
  if (s.erased.erase(profile_id) > 0)
    tombstones_.fetch_sub(1, std::memory_order_relaxed);
}

void directory::sweep_idle() {
  std::vector<caf::actor> ask;
  const auto now = std::chrono::steady_clock::now();
  for (auto& s : shards_) {
    {
      std::lock_guard<std::mutex> guard(s.mtx);
      while (!s.erased_expiry.empty() && s.erased_expiry.front().first <= now) {
        if (s.erased.erase(s.erased_expiry.front().second) > 0)
          tombstones_.fetch_sub(1, std::memory_order_relaxed);
        s.erased_expiry.pop_front();
      }
      for (auto& [id, a] : s.actors) {
        if (!a.touched)
          ask.push_back(a.actor);
        a.touched = false;
      }
    }
    for (auto& a : ask)
      caf::anon_send(a, idle_atom_v);
    ask.clear();
  }
}

template <class F>
void directory::each_live(F f) {
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> guard(s.mtx);
    for (auto& [id, a] : s.actors)
      f(a.actor);
  }
}

void directory::passivate_all() {
  each_live([](const caf::actor& a) { caf::anon_send(a, passivate_atom_v); });
}

void directory::stop_all() {
  each_live([](const caf::actor& a) { caf::anon_send_exit(a, caf::exit_reason::user_shutdown); });
}

}  // namespace nudge::actors
