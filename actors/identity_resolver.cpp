#include "actors/identity_resolver.hpp"

#include "actors/ids.hpp"
#include "storage/alias_table.hpp"
#include "storage/env.hpp"
#include "storage/identity_table.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

namespace nudge::actors {

storage::read_txn& identity_resolver::lazy_read::operator*() {
  if (!txn_)
    txn_.emplace(env_.read());
  return *txn_;
}

identity_resolver::identity_resolver(storage::env& env, std::vector<identity_limit> limits)
    : env_(env), limits_(std::move(limits)) {}

std::uint32_t identity_resolver::limit_of(std::string_view type) const {
  for (const auto& l : limits_)
    if (l.type == type)
      return l.limit;
  return 1;
}

std::string identity_resolver::canonical_locked(lazy_read& tx, std::string_view profile_id) {
  std::string id(profile_id);
  for (int hops = 0; hops < 64; ++hops) {
    if (auto it = aliases_.find(id); it != aliases_.end()) {
      id = it->second.survivor;
      continue;
    }
    std::error_code ec;
    auto next = storage::alias_table::get(*tx, id, ec);
    if (ec)
      spdlog::error("identity resolver: alias read failed: {}", ec.message());
    if (!next)
      return id;
    id = std::move(*next);
  }
  return id;
}

namespace {
constexpr std::size_t settled_cache_max = 1 << 18;
}

std::optional<std::string> identity_resolver::owner_locked(lazy_read& tx, const policies::identity& id) {
  if (const auto g = generation(); g != settled_generation_) {
    settled_.clear();
    settled_generation_ = g;
  }
  std::optional<std::string> owner;
  const auto& k = lookup_key(id);
  if (auto it = links_.find(k); it != links_.end()) {
    owner = canonical_locked(tx, it->second.profile_id);
  } else if (auto hit = settled_.find(k); hit != settled_.end()) {
    owner = hit->second;
  } else {
    std::error_code ec;
    auto pid = storage::identity_table::get(*tx, id, ec);
    if (ec)
      spdlog::error("identity resolver: index read failed: {}", ec.message());
    if (pid) {
      owner = canonical_locked(tx, *pid);
      // A pending alias (a merge not yet committed) may have shaped the answer.
      if (!ec && aliases_.empty()) {
        if (settled_.size() >= settled_cache_max)
          settled_.clear();
        settled_.emplace(key(id), *owner);
      }
    }
  }
  if (owner && !erased_.empty() && erased_.count(*owner) > 0)
    return std::nullopt;  // being (or was) erased: the identity is free
  return owner;
}

std::vector<policies::identity> identity_resolver::members_locked(lazy_read& tx, const std::string& profile_id) {
  std::error_code ec;
  auto out = storage::identity_table::members(*tx, profile_id, ec);
  if (ec)
    spdlog::error("identity resolver: members read failed: {}", ec.message());
  if (auto it = members_.find(profile_id); it != members_.end())
    for (const auto& m : it->second)
      if (std::find(out.begin(), out.end(), m.id) == out.end())
        out.push_back(m.id);
  return out;
}

bool identity_resolver::over_limit_locked(lazy_read& tx, const std::vector<std::string>& profiles,
                                          const std::vector<policies::identity>& ids) {
  std::map<std::string_view, std::set<std::string_view>> values;
  std::vector<std::vector<policies::identity>> held;  // keeps the views alive
  held.reserve(profiles.size());
  for (const auto& p : profiles)
    for (const auto& id : held.emplace_back(members_locked(tx, p)))
      values[id.type].insert(id.value);
  for (const auto& id : ids)
    values[id.type].insert(id.value);
  for (const auto& [type, vals] : values)
    if (vals.size() > limit_of(type))
      return true;
  return false;
}

identity_resolver::result identity_resolver::resolve(std::vector<policies::identity> ids) {
  result out;
  std::lock_guard<std::mutex> guard(mtx_);
  lazy_read tx(env_);
  // Reused per thread (a resolution does not nest): their buffers stay.
  thread_local std::vector<std::optional<std::string>> owners;
  thread_local std::vector<std::string> profiles;
  // Steps 1 and 2: look up; while the union would break a limit, give up the
  // message's lowest-priority link and look again. Profiles are never split.
  for (;;) {
    owners.clear();
    profiles.clear();
    for (const auto& id : ids) {
      auto& o = owners.emplace_back(owner_locked(tx, id));
      if (o && std::find(profiles.begin(), profiles.end(), *o) == profiles.end())
        profiles.push_back(*o);
    }
    if (ids.size() <= 1 || !over_limit_locked(tx, profiles, ids))
      break;
    out.given_up.push_back(std::move(ids.back()));
    ids.pop_back();
  }

  const std::uint64_t ticket = next_ticket_++;
  reservation res;
  if (profiles.empty()) {
    out.profile_id = new_id('p');
    out.created = true;
  } else {
    // Step 3: several profiles merge into the oldest; ids sort by creation time.
    std::sort(profiles.begin(), profiles.end());
    out.profile_id = profiles.front();
    for (std::size_t i = 1; i < profiles.size(); ++i) {
      const auto& loser = profiles[i];
      for (auto& id : members_locked(tx, loser)) {
        members_[out.profile_id].push_back({id, ticket});
        out.merged_identities.push_back(std::move(id));
      }
      aliases_[loser] = {out.profile_id, ticket};
      res.aliases.push_back(loser);
      out.merged.push_back(loser);
    }
    if (!out.merged.empty()) {
      res.members.push_back(out.profile_id);
      merges_.fetch_add(out.merged.size(), std::memory_order_relaxed);
      invalidate();
    }
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!owners[i]) {
      auto k = key(ids[i]);
      links_[k] = {out.profile_id, ticket};
      res.links.push_back(std::move(k));
      members_[out.profile_id].push_back({ids[i], ticket});
      if (res.members.empty() || res.members.back() != out.profile_id)
        res.members.push_back(out.profile_id);
    }
    out.added.push_back(std::move(ids[i]));
  }
  given_up_.fetch_add(out.given_up.size(), std::memory_order_relaxed);
  if (!res.links.empty() || !res.aliases.empty()) {
    tickets_.emplace(ticket, std::move(res));
    out.ticket = ticket;
  }
  return out;
}

std::optional<std::string> identity_resolver::find(const policies::identity& id) {
  std::lock_guard<std::mutex> guard(mtx_);
  lazy_read tx(env_);
  return owner_locked(tx, id);
}

std::string identity_resolver::canonical(std::string_view profile_id) {
  std::lock_guard<std::mutex> guard(mtx_);
  lazy_read tx(env_);
  return canonical_locked(tx, profile_id);
}

void identity_resolver::erasing(const std::string& profile_id) {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    erased_.insert(profile_id);
  }
  invalidate();
}

void identity_resolver::erase_failed(const std::string& profile_id) {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    erased_.erase(profile_id);
  }
  invalidate();
}

void identity_resolver::settled(std::uint64_t ticket) {
  if (ticket == 0)
    return;
  std::lock_guard<std::mutex> guard(mtx_);
  auto it = tickets_.find(ticket);
  if (it == tickets_.end())
    return;
  for (const auto& k : it->second.links)
    if (auto l = links_.find(k); l != links_.end() && l->second.ticket == ticket)
      links_.erase(l);
  for (const auto& a : it->second.aliases)
    if (auto l = aliases_.find(a); l != aliases_.end() && l->second.ticket == ticket)
      aliases_.erase(l);
  if (!it->second.aliases.empty())
    settled_.clear();  // the merge committed (answers move) or failed (they stay): look again
  for (const auto& p : it->second.members)
    if (auto m = members_.find(p); m != members_.end()) {
      std::erase_if(m->second, [ticket](const pending_member& pm) { return pm.ticket == ticket; });
      if (m->second.empty())
        members_.erase(m);
    }
  tickets_.erase(it);
}

}  // namespace nudge::actors
