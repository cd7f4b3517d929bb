// The one implementation of nudge::policies::policy: a detail::program and decide().
// Immutable after construction; decide() may run concurrently on any threads.
#pragma once

#include "policies/detail/compiled.hpp"
#include "policies/policy.hpp"

#include <string_view>
#include <unordered_map>

namespace nudge::policies::detail {

class compiled_policy final : public policy {
public:
  explicit compiled_policy(program prog);
  // Not copyable or movable: index_ and schedules_ view into prog_.
  compiled_policy(const compiled_policy&) = delete;
  compiled_policy& operator=(const compiled_policy&) = delete;

  std::string_view version() const noexcept override { return prog_.version; }
  std::string_view source() const noexcept override { return prog_.source; }
  std::size_t action_count() const noexcept override { return prog_.actions.size(); }
  std::size_t find_action(std::string_view id) const noexcept override;
  duration longest_window() const noexcept override { return longest_window_; }
  decision decide(const decide_request& req) const override;
  bool has_fallback() const noexcept override { return prog_.fallback.has_value(); }
  std::optional<action_info> describe(std::size_t index) const override;
  const std::vector<schedule_view>& schedules() const noexcept override { return schedules_; }

private:
  const action* at(std::size_t index) const noexcept;

  program prog_;
  std::unordered_map<std::string_view, std::size_t> index_;
  duration longest_window_{0};
  std::vector<schedule_view> schedules_;  ///< views into prog_
};

}  // namespace nudge::policies::detail
