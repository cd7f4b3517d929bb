// The listener and its I/O threads (shards). start() binds and begins accepting;
// stop_accepting() closes the acceptor (SIGTERM's first step); stop() ends every
// connection and joins the threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

namespace nudge::net {

class gateway;

class server {
public:
  /// `shards`: I/O threads, each with its own io_context; connections are spread
  /// over them round robin, and a connection stays on its shard's thread.
  /// `io_actors_share` > 0: profile actors that an I/O thread wakes run on it while
  /// they take at most that share of its time (net/io_unit.hpp); 0: all run on CAF's
  /// scheduler. `spin`: how long an I/O thread keeps polling after its last handler
  /// before it sleeps (net/io_loop.hpp); 0: it sleeps at once.
  server(gateway& gw, int shards, double io_actors_share = 0,
         std::chrono::microseconds spin = std::chrono::microseconds{0});
  ~server();

  /// Binds host:port (port 0: any free port) and starts accepting. Returns the bound
  /// port, or 0 with `ec` set.
  std::uint16_t start(const std::string& host, std::uint16_t port, std::error_code& ec);
  void stop_accepting();
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace nudge::net
