// An asynchronous HTTP/1.1 POST client for outbound destinations (Beast), with an io
// thread of its own so that slow receivers never occupy the gateway's threads.
//
// post() may be called from any thread and never blocks: it queues the request on the
// client's io_context. One connection per request (Connection: close); `timeout`
// bounds connecting, writing and reading together. `done` is called exactly once, on
// the client's thread, with the response status, or 0 for a bad URL, a transport
// error or a timeout. After stop() no `done` runs any more (queued requests are
// dropped with their callbacks). http:// only: TLS is not in this build.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace nudge::net {

class http_client {
public:
  using headers = std::vector<std::pair<std::string, std::string>>;

  http_client();
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  void post(const std::string& url, std::string body, headers extra, std::chrono::milliseconds timeout,
            std::function<void(int status)> done);

  /// Stops the io thread and drops what is queued. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace nudge::net
