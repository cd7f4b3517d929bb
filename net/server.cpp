#include "net/server.hpp"

#include "net/beast.hpp"
#include "net/gateway.hpp"
#include "net/http_session.hpp"

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <thread>
#include <vector>

namespace nudge::net {

namespace {

class listener : public std::enable_shared_from_this<listener> {
public:
  listener(asio::io_context& ioc, gateway& gw) : ioc_(ioc), acceptor_(asio::make_strand(ioc)), gw_(gw) {}

  std::uint16_t open(const tcp::endpoint& ep, beast::error_code& ec) {
    acceptor_.open(ep.protocol(), ec);
    if (ec) return 0;
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return 0;
    acceptor_.bind(ep, ec);
    if (ec) return 0;
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return 0;
    return acceptor_.local_endpoint().port();
  }

  void run() { do_accept(); }

  void close() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

private:
  void do_accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open())
      return;
    if (!ec) {
      if (gw_.connections.load(std::memory_order_relaxed) >= gw_.options().max_connections) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        static const std::string busy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
          "Content-Length: 68\r\n\r\n{\"error\":{\"code\":\"overloaded\",\"message\":\"too many connections now\"}}";
        asio::write(socket, asio::buffer(busy), ignored);
        socket.close(ignored);
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<http_session>(std::move(socket), gw_)->run();
      }
    }
    do_accept();
  }

  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
  gateway& gw_;
};

}  // namespace

struct server::impl {
  impl(gateway& gw, int threads) : gw(gw), ioc(threads), nthreads(threads) {}
  gateway& gw;
  asio::io_context ioc;
  int nthreads;
  std::shared_ptr<listener> lst;
  std::vector<std::thread> threads;
};

server::server(gateway& gw, int threads) : impl_(std::make_unique<impl>(gw, threads)) {
}

server::~server() {
  stop();
}

std::uint16_t server::start(const std::string& host, std::uint16_t port, std::error_code& ec) {
  beast::error_code bec;
  auto addr = asio::ip::make_address(host, bec);
  if (bec) {
    ec = bec;
    return 0;
  }
  impl_->lst = std::make_shared<listener>(impl_->ioc, impl_->gw);
  auto bound = impl_->lst->open(tcp::endpoint{addr, port}, bec);
  if (bec) {
    ec = bec;
    return 0;
  }
  impl_->lst->run();
  for (int i = 0; i < impl_->nthreads; ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return bound;
}

void server::stop_accepting() {
  if (impl_->lst)
    impl_->lst->close();
}

void server::stop() {
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable())
      t.join();
  impl_->threads.clear();
}

}  // namespace nudge::net
