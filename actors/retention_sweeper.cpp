#include <utility>

#include "actors/retention_sweeper.hpp"

#include "actors/context.hpp"
#include "actors/directory.hpp"
#include "actors/message.hpp"
#include "storage/env.hpp"
#include "storage/expiry_table.hpp"

#include <spdlog/spdlog.h>

namespace nudge::actors {

retention_sweeper::retention_sweeper(context& ctx, std::chrono::milliseconds period, std::size_t batch)
  : ctx_(ctx), batch_(batch), thread_("nudge-retention", period, [this] { sweep_once(); }) {
}

retention_sweeper::~retention_sweeper() {
  stop();
}

void retention_sweeper::stop() {
  thread_.stop();
}

std::size_t retention_sweeper::sweep_once() {
  auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  std::error_code ec;
  std::vector<std::pair<policies::timestamp, std::string>> due;
  {
    auto txn = ctx_.env->read();
    due = storage::expiry_table::due_before(txn, now, batch_, ec);
  }
  if (ec)
    spdlog::error("retention: expiry index unreadable: {}", ec.message());
  for (auto& [when, id] : due) {
    auto env = make_envelope();
    env->msg.kind = message_kind::erase_profile;
    env->msg.erase_reason = "anonymous_ttl";
    ctx_.dir->dispatch(id, std::move(env));
  }
  return due.size();
}

}  // namespace nudge::actors
