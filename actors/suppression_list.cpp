#include <utility>

#include "actors/suppression_list.hpp"

#include "storage/env.hpp"
#include "storage/suppression_table.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

namespace nudge::actors {

suppression_list::suppression_list(storage::env& env, std::string key) : env_(env), key_(std::move(key)) {
  auto txn = env_.read();
  size_.store(storage::suppression_table::count(txn), std::memory_order_relaxed);
}

std::string suppression_list::hash(const policies::identity& id) const {
  std::string msg = id.type;
  msg.push_back('\0');
  msg += id.value;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool suppression_list::contains_any(const std::vector<policies::identity>& ids) const {
  if (size() == 0)
    return false;
  auto txn = env_.read();
  for (const auto& id : ids) {
    std::error_code ec;
    if (storage::suppression_table::contains(txn, hash(id), ec))
      return true;
    if (ec)
      spdlog::error("suppression list unreadable: {}", ec.message());
  }
  return false;
}

}  // namespace nudge::actors
