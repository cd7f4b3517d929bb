#include "actors/identity_resolver.hpp"

#include "actors/ids.hpp"
#include "storage/env.hpp"
#include "storage/identity_table.hpp"

namespace nudge::actors {

std::optional<std::string> identity_resolver::find_locked(const policies::identity& id) {
  if (auto it = pending_.find(key(id)); it != pending_.end()) {
    if (it->second.empty())
      return std::nullopt;  // forgotten: being erased
    return it->second;
  }
  auto txn = env_.read();
  return storage::identity_table::get(txn, id);
}

std::optional<std::string> identity_resolver::find(const policies::identity& id) {
  std::lock_guard<std::mutex> guard(mtx_);
  return find_locked(id);
}

identity_resolver::result identity_resolver::resolve(const std::vector<policies::identity>& ids) {
  result out;
  std::lock_guard<std::mutex> guard(mtx_);
  std::vector<bool> known(ids.size(), false);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (auto pid = find_locked(ids[i])) {
      known[i] = true;
      if (out.profile_id.empty())
        out.profile_id = std::move(*pid);
    }
  }
  if (out.profile_id.empty()) {
    out.profile_id = new_id('p');
    out.created = true;
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!known[i])
      pending_.insert_or_assign(key(ids[i]), out.profile_id);
    else if (find_locked(ids[i]) != out.profile_id)
      continue;  // held by another profile: not linked here
    out.added.push_back(ids[i]);
  }
  return out;
}

void identity_resolver::settled(const std::vector<policies::identity>& links, const std::string& profile_id) {
  std::lock_guard<std::mutex> guard(mtx_);
  for (const auto& id : links)
    if (auto it = pending_.find(key(id)); it != pending_.end() && it->second == profile_id)
      pending_.erase(it);
}

void identity_resolver::forget(const std::vector<policies::identity>& ids, const std::string& profile_id) {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    for (const auto& id : ids)
      if (find_locked(id) == profile_id)
        pending_.insert_or_assign(key(id), std::string());
  }
  invalidate();
}

void identity_resolver::forgotten(const std::vector<policies::identity>& ids) {
  std::lock_guard<std::mutex> guard(mtx_);
  for (const auto& id : ids)
    if (auto it = pending_.find(key(id)); it != pending_.end() && it->second.empty())
      pending_.erase(it);
}

}  // namespace nudge::actors
