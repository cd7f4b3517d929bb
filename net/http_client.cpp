#include "net/beast.hpp"

#include "net/http_client.hpp"
#include "net/ws_url.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>

#include <pthread.h>

namespace nudge::net {

namespace {

/// One POST: resolve, connect, write, read, then `done` once.
class post_op : public std::enable_shared_from_this<post_op> {
public:
  post_op(asio::io_context& ioc, std::chrono::milliseconds timeout, std::function<void(int)> done)
    : resolver_(asio::make_strand(ioc)), stream_(resolver_.get_executor()), timeout_(timeout), done_(std::move(done)) {}

  void run(const ws_url& url, std::string body, const http_client::headers& extra) {
    req_.method(http::verb::post);
    req_.target(url.target);
    req_.version(11);
    req_.set(http::field::host, url.host + ":" + url.port);
    req_.set(http::field::user_agent, "nudge");
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::connection, "close");
    for (const auto& [k, v] : extra)
      req_.set(k, v);
    req_.body() = std::move(body);
    req_.prepare_payload();
    resolver_.async_resolve(url.host, url.port,
                            [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                              self->on_resolve(ec, std::move(r));
                            });
  }

private:
  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec)
      return finish(0);
    stream_.expires_after(timeout_);
    stream_.async_connect(results, [self = shared_from_this()](beast::error_code e, const tcp::endpoint&) {
      self->on_connect(e);
    });
  }
  void on_connect(beast::error_code ec) {
    if (ec)
      return finish(0);
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_write(e); });
  }
  void on_write(beast::error_code ec) {
    if (ec)
      return finish(0);
    http::async_read(stream_, buffer_, res_, [self = shared_from_this()](beast::error_code e, std::size_t) {
      self->on_read(e);
    });
  }
  void on_read(beast::error_code ec) {
    if (ec)
      return finish(0);
    finish(static_cast<int>(res_.result_int()));
  }
  void finish(int status) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (auto done = std::exchange(done_, nullptr))
      done(status);
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  std::chrono::milliseconds timeout_;
  std::function<void(int)> done_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  beast::flat_buffer buffer_;
};

}  // namespace

struct http_client::impl {
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  std::thread thread{[this] {
    pthread_setname_np(pthread_self(), "nudge-http");
    ioc.run();
  }};
};

http_client::http_client() : impl_(std::make_unique<impl>()) {}

http_client::~http_client() {
  stop();
}

void http_client::stop() {
  if (!impl_->thread.joinable())
    return;
  impl_->work.reset();
  impl_->ioc.stop();
  impl_->thread.join();
}

void http_client::post(const std::string& url, std::string body, headers extra, std::chrono::milliseconds timeout,
                       std::function<void(int)> done) {
  constexpr std::string_view scheme = "http://";
  std::string error;
  std::optional<ws_url> parsed;
  if (std::string_view(url).substr(0, scheme.size()) == scheme) {
    // Same authority and path rules as ws:// URLs; only the default path differs.
    auto rest = url.substr(scheme.size());
    parsed = parse_ws_url("ws://" + rest, error);
    if (parsed && rest.find_first_of("/?") == std::string::npos)
      parsed->target = "/";
  }
  if (!parsed) {
    asio::post(impl_->ioc, [done = std::move(done)] { done(0); });
    return;
  }
  asio::post(impl_->ioc, [this, u = std::move(*parsed), body = std::move(body), extra = std::move(extra), timeout,
                          done = std::move(done)]() mutable {
    std::make_shared<post_op>(impl_->ioc, timeout, std::move(done))->run(u, std::move(body), extra);
  });
}

}  // namespace nudge::net
