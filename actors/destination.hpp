// An outbound destination ([[destinations]], API.md section 6): an HTTP endpoint that
// receives the decisions of its channels that no live connection asked for.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace nudge::actors {

struct destination {
  std::string id;
  std::string url;     ///< http://HOST[:PORT]/PATH
  std::string secret;  ///< signs each POST like a webhook (Nudge-Signature)
  std::vector<std::string> channels;
  std::chrono::milliseconds timeout{5000};  ///< per attempt
  int max_attempts = 20;                    ///< then the entry moves to the failed table
};

}  // namespace nudge::actors
