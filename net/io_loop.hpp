// How an I/O thread runs its io_context: run() as asio does, or polling for a short
// while after its last handler before it blocks in epoll_wait.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>

namespace nudge::net {

/// Runs `ioc` until it is stopped or runs out of work, like io_context::run(). With
/// `spin` > 0, once nothing is ready the thread keeps polling (epoll_wait with no
/// timeout) for up to `spin` before it sleeps in epoll_wait. A message that arrives
/// meanwhile finds the thread awake: no wake-up of a sleeping thread (on a VM, of a
/// halted virtual CPU), and caches still warm. Measured in an open loop at 20,000
/// messages/s: p50 0.14-0.22 ms with 100 µs against 0.18-0.36 ms without
/// (docs/BENCHMARKS.md, "Polling before the I/O thread sleeps"). An idle service does not
/// spin: the window opens only after a handler ran.
void run_io(boost::asio::io_context& ioc, std::chrono::microseconds spin);

}  // namespace nudge::net
