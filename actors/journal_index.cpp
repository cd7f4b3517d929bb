#include "actors/journal_index.hpp"

#include <algorithm>

namespace nudge::actors {

void journal_index::appended(const std::string& profile, std::uint64_t position) {
  appended(profile, std::span<const std::uint64_t>(&position, 1));
}

void journal_index::appended(const std::string& profile, std::span<const std::uint64_t> positions) {
  if (positions.empty())
    return;
  std::lock_guard lock(mutex_);
  auto [it, inserted] = live_.try_emplace(profile);
  if (inserted || it->second.positions.empty())
    by_first_.emplace(positions.front(), &it->first);
  it->second.positions.insert(it->second.positions.end(), positions.begin(), positions.end());
  entries_ += positions.size();
}

void journal_index::covered(const std::string& profile) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(profile);
  if (it == live_.end())
    return;
  if (!it->second.positions.empty())
    by_first_.erase(it->second.positions.front());
  entries_ -= it->second.positions.size();
  live_.erase(it);
}

std::vector<std::uint64_t> journal_index::positions(std::string_view profile) const {
  std::lock_guard lock(mutex_);
  auto it = live_.find(profile);
  return it == live_.end() ? std::vector<std::uint64_t>{} : it->second.positions;
}

std::vector<std::uint64_t> journal_index::all_positions() const {
  std::vector<std::uint64_t> out;
  {
    std::lock_guard lock(mutex_);
    out.reserve(entries_);
    for (const auto& [profile, entry] : live_)
      out.insert(out.end(), entry.positions.begin(), entry.positions.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::uint64_t journal_index::low_water(std::uint64_t next) const {
  std::lock_guard lock(mutex_);
  return by_first_.empty() ? next : by_first_.begin()->first;
}

std::vector<std::string> journal_index::laggards(std::uint64_t before, std::uint64_t now,
                                                 std::uint64_t asked_after, std::size_t max) {
  std::vector<std::string> out;
  std::lock_guard lock(mutex_);
  std::size_t looked = 0;  // those asked already are skipped, a bounded number of them
  for (auto it = by_first_.begin();
       it != by_first_.end() && it->first < before && out.size() < max && looked < 8 * max; ++it, ++looked) {
    auto& entry = live_.find(*it->second)->second;
    if (entry.asked_at != 0 && entry.asked_at >= asked_after)
      continue;
    entry.asked_at = now;
    out.push_back(*it->second);
  }
  return out;
}

std::size_t journal_index::live_entries() const {
  std::lock_guard lock(mutex_);
  return entries_;
}

std::size_t journal_index::live_profiles() const {
  std::lock_guard lock(mutex_);
  return live_.size();
}

}  // namespace nudge::actors
