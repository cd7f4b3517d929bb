#include "policies/policy.hpp"

#include "policies/detail/compiled_policy.hpp"
#include "policies/detail/compiler.hpp"

#include <exception>

namespace nudge::policies {

std::string_view to_string(reason r) noexcept {
  switch (r) {
    case reason::eligible:
      return "eligible";
    case reason::condition_false:
      return "condition_false";
    case reason::suppressed:
      return "suppressed";
    case reason::consent_missing:
      return "consent_missing";
    case reason::capped:
      return "capped";
    case reason::cooldown:
      return "cooldown";
    case reason::global_capped:
      return "global_capped";
    case reason::contact_policy:
      return "contact_policy";
    case reason::lost_arbitration:
      return "lost_arbitration";
    case reason::wrong_channel:
      return "wrong_channel";
    case reason::wrong_placement:
      return "wrong_placement";
    case reason::holdout:
      return "holdout";
  }
  return "unknown";
}

compile_result compile(std::string_view json, const policy_limits& limits) {
  compile_result result;
  try {
    detail::program prog;
    if (detail::compile_program(json, limits, prog, result.problems))
      result.compiled = std::make_shared<const detail::compiled_policy>(std::move(prog));
  } catch (const std::exception& e) {
    result.compiled.reset();
    result.problems.push_back(problem{"", std::string("internal error: ") + e.what()});
  }
  return result;
}

}  // namespace nudge::policies
