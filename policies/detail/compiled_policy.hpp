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

  std::string_view version() const noexcept override { return prog_.version; }
  std::string_view source() const noexcept override { return prog_.source; }
  std::size_t action_count() const noexcept override { return prog_.actions.size(); }
  std::size_t find_action(std::string_view id) const noexcept override;
  duration longest_window() const noexcept override { return longest_window_; }
  decision decide(const decide_request& req) const override;
  bool has_fallback() const noexcept override { return prog_.fallback.has_value(); }
  std::optional<action_info> describe(std::size_t index) const override;
  std::vector<schedule_view> schedules() const override;

private:
  const action* at(std::size_t index) const noexcept;

  program prog_;
  std::unordered_map<std::string_view, std::size_t> index_;
  duration longest_window_{0};
};

}  // namespace nudge::policies::detail
