// One of the gateway's I/O threads (a shard: net/server.cpp) as a reply lane
// (actors/message.hpp): the journal hands it a commit's replies for that thread's
// sessions in one asio::post, and the handler delivers each to its session directly.
// Sound because one thread runs the shard's io_context (no session handler of the
// shard can run concurrently with the lane's), so sessions run without strands.
#pragma once

#include "actors/message.hpp"
#include "net/beast.hpp"

#include <utility>
#include <vector>

namespace nudge::net {

class io_lane final : public actors::reply_lane {
public:
  explicit io_lane(asio::io_context& ioc) : ioc_(ioc) {}

  void post(std::vector<item> items) override {
    asio::post(ioc_, [items = std::move(items)]() mutable {
      for (auto& i : items)
        i.sink->deliver_here(i.slot, std::move(i.bytes), i.status);
    });
  }

private:
  asio::io_context& ioc_;
};

}  // namespace nudge::net
