// The gateway's single I/O thread as a reply lane (actors/message.hpp): the journal
// hands it a whole commit's replies in one asio::post, and the handler delivers each
// to its session directly. Sound only while one thread runs the io_context (then no
// session handler can run concurrently with the lane's); the server installs it only
// then, and sessions then run without strands.
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
