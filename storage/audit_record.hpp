// One entry of the audit trail: what happened to a profile and when. Plain data.
// Kinds: "consent", "merge", "link_given_up", "decision", "erasure". `detail_json` is
// a compact JSON object whose keys depend on the kind (README, "Audit trail").
// An erasure record has an empty profile_id: it must carry no personal data.
#pragma once

#include <string>

#include "policies/profile.hpp"

namespace nudge::storage {

struct audit_record {
  std::string profile_id;
  policies::timestamp ts{};
  std::string kind;
  std::string detail_json;
};

}  // namespace nudge::storage
