// Turns a policy document into a detail::program (POLICY.md, Validation).
#pragma once

#include "policies/detail/compiled.hpp"
#include "policies/policy.hpp"

#include <string_view>
#include <vector>

namespace nudge::policies::detail {

/// Parses and validates `json` against `limits` and fills `out`; appends every
/// problem found to `problems`. Returns true when `out` is complete and consistent;
/// otherwise `out` must not be evaluated (it may hold dangling indices or cycles).
/// Never throws.
bool compile_program(std::string_view json, const policy_limits& limits, program& out,
                     std::vector<problem>& problems) noexcept;

}  // namespace nudge::policies::detail
