#include "policies/profile.hpp"

#include <vector>

namespace nudge::policies {

decision_record::decision_record(std::string_view decision_id, std::string_view request_id, timestamp ts,
                                 std::string_view channel, std::string_view placement,
                                 std::string_view policy_version, std::span<const shown_action> actions,
                                 bool holdout, std::span<const std::string_view> relied_on)
    : ts_(ts), actions_(static_cast<std::uint32_t>(actions.size())), holdout_(holdout) {
  std::vector<std::string_view> parts;
  parts.reserve(fixed + 3 * actions.size() + relied_on.size());
  parts.insert(parts.end(), {decision_id, request_id, channel, placement, policy_version});
  for (const auto& a : actions)
    parts.insert(parts.end(), {a.action, a.channel, a.placement});
  parts.insert(parts.end(), relied_on.begin(), relied_on.end());
  text_ = packed_strings(parts);
}

}  // namespace nudge::policies
