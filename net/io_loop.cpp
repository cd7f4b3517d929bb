#include "net/io_loop.hpp"

namespace nudge::net {

void run_io(boost::asio::io_context& ioc, std::chrono::microseconds spin) {
  if (spin.count() <= 0) {
    ioc.run();
    return;
  }
  using clock = std::chrono::steady_clock;
  while (!ioc.stopped()) {
    if (ioc.poll() > 0)
      continue;  // handlers ran: poll again at once
    bool worked = false;
    for (const auto until = clock::now() + spin; !worked && !ioc.stopped() && clock::now() < until;)
      worked = ioc.poll_one() > 0;
    if (!worked && ioc.run_one() == 0)
      return;  // stopped, or out of work
  }
}

}  // namespace nudge::net
