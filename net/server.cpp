#include "net/server.hpp"

#include "net/beast.hpp"
#include "net/flex_stream.hpp"
#include "net/gateway.hpp"
#include "net/http_session.hpp"
#include "net/io_loop.hpp"
#include "net/io_lane.hpp"
#include "net/io_unit.hpp"

#include "actors/local_unit.hpp"

#include <boost/asio/executor_work_guard.hpp>

#include <pthread.h>

#include <string>
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace nudge::net {

namespace {

/// A connection past max_connections on a plain port: answered 503 `overloaded` with
/// Connection: close, then closed gracefully: the send side is shut and what the client
/// had sent is read and discarded (at most 2 s), so that closing with its request
/// unread does not reset the connection before the client has read the answer. Not
/// counted in gateway::connections.
class refusal : public std::enable_shared_from_this<refusal> {
public:
  /// `answer`: a whole 503 response, which outlives the refusal.
  refusal(tcp::socket socket, const std::string& answer) : stream_(std::move(socket)), answer_(answer) {}

  /// The whole 503 answer carrying `message`.
  static std::string answer_for(const std::string& message) {
    const std::string body = R"({"error":{"code":"overloaded","message":")" + message + R"("}})";
    return "HTTP/1.1 503 Service Unavailable\r\nServer: nudge\r\nContent-Type: application/json\r\n"
           "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  void run() {
    stream_.expires_after(std::chrono::seconds(2));
    asio::async_write(stream_, asio::buffer(answer_), beast::bind_front_handler(&refusal::on_write, shared_from_this()));
  }

private:
  void on_write(beast::error_code ec, std::size_t) {
    if (ec)
      return;  // the stream closes with this object
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    do_drain();
  }

  void do_drain() {
    stream_.async_read_some(asio::buffer(scratch_), beast::bind_front_handler(&refusal::on_drain, shared_from_this()));
  }

  void on_drain(beast::error_code ec, std::size_t) {
    if (!ec)
      do_drain();  // until the client's FIN, an error or the deadline
  }

  beast::tcp_stream stream_;
  const std::string& answer_;
  char scratch_[512];
};

class listener : public std::enable_shared_from_this<listener> {
public:
  /// `tls`: null for plain TCP; else every connection is TLS with this context.
  /// `shards`: the io_contexts that connections are spread over, round robin; each
  /// is run by one thread, so its sessions need no strands.
  listener(std::vector<asio::io_context*> shards, gateway& gw, asio::ssl::context* tls)
    : shards_(std::move(shards)), acceptor_(*shards_.front()), gw_(gw), tls_(tls) {}

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
    // The accepted socket belongs to the next shard's io_context: its session's
    // handlers run on that shard's thread (http_session::run dispatches there).
    auto& ioc = *shards_[next_shard_];
    next_shard_ = (next_shard_ + 1) % shards_.size();
    acceptor_.async_accept(ioc, beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp_socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open())
      return;
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      static const std::string too_many = refusal::answer_for("too many connections (max_connections)");
      static const std::string too_many_here =
        refusal::answer_for("too many connections from this address (max_connections_per_address)");
      gateway::address_slot slot;
      const std::string* refused = nullptr;
      if (gw_.connections.load(std::memory_order_relaxed) >= gw_.options().max_connections)
        refused = &too_many;
      else if (gw_.options().max_connections_per_address > 0) {
        // The address is looked at only under a per-address limit.
        auto peer = socket.remote_endpoint(ignored);
        if (ignored || !gw_.take_address_slot(peer.address().to_string(), slot))
          refused = &too_many_here;
      }
      if (refused) {
        gw_.connections_refused.fetch_add(1, std::memory_order_relaxed);
        if (tls_)
          socket.close(ignored);  // no plaintext answer on a TLS port: just close
        else
          std::make_shared<refusal>(std::move(socket), *refused)->run();
      } else if (tls_) {
        std::make_shared<http_session>(flex_stream(flex_stream::tls_stream(std::move(socket), *tls_)), gw_,
                                       std::move(slot))->run();
      } else {
        std::make_shared<http_session>(flex_stream(tcp_stream(std::move(socket))), gw_, std::move(slot))->run();
      }
    }
    do_accept();
  }

  std::vector<asio::io_context*> shards_;
  std::size_t next_shard_ = 0;
  tcp::acceptor acceptor_;  ///< on the first shard
  gateway& gw_;
  asio::ssl::context* tls_;
};

}  // namespace

/// One I/O thread with its io_context, its reply lane and (when actors may run on I/O
/// threads) its execution unit. Sessions, the actors they wake and the replies of
/// the commits those actors make stay on the shard's thread.
struct shard {
  shard(gateway& gw, double io_actors_share) : ioc(1), lane(ioc) {
    if (io_actors_share > 0 && gw.ctx().system)
      unit = std::make_unique<io_unit>(*gw.ctx().system, ioc, io_actors_share, gw.ctx().writer);
  }
  asio::io_context ioc;
  /// Keeps run() going while the shard has no connection (the acceptor is on the first).
  asio::executor_work_guard<asio::io_context::executor_type> busy = asio::make_work_guard(ioc);
  io_lane lane;
  std::unique_ptr<io_unit> unit;  ///< null: actors run on CAF's scheduler only
  std::thread thread;
};

struct server::impl {
  impl(gateway& gw, int shards, double io_actors_share, std::chrono::microseconds spin) : gw(gw), spin(spin) {
    for (int i = 0; i < std::max(shards, 1); ++i)
      shards_.push_back(std::make_unique<shard>(gw, io_actors_share));
  }
  gateway& gw;
  std::chrono::microseconds spin;
  std::vector<std::unique_ptr<shard>> shards_;
  std::shared_ptr<listener> lst;
  std::unique_ptr<asio::ssl::context> tls;
};

server::server(gateway& gw, int shards, double io_actors_share, std::chrono::microseconds spin)
  : impl_(std::make_unique<impl>(gw, shards, io_actors_share, spin)) {
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
  const auto& opts = impl_->gw.options();
  if (!opts.tls_cert.empty()) {
    // TLS 1.2 and later; the key and certificate chain are read once, at start.
    impl_->tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    impl_->tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use, bec);
    if (!bec)
      impl_->tls->use_certificate_chain_file(opts.tls_cert, bec);
    if (!bec)
      impl_->tls->use_private_key_file(opts.tls_key, asio::ssl::context::pem, bec);
    if (bec) {
      ec = bec;
      return 0;
    }
  }
  std::vector<asio::io_context*> iocs;
  for (auto& sh : impl_->shards_)
    iocs.push_back(&sh->ioc);
  impl_->lst = std::make_shared<listener>(std::move(iocs), impl_->gw, impl_->tls.get());
  auto bound = impl_->lst->open(tcp::endpoint{addr, port}, bec);
  if (bec) {
    ec = bec;
    return 0;
  }
  impl_->lst->run();
  for (std::size_t i = 0; i < impl_->shards_.size(); ++i)
    impl_->shards_[i]->thread = std::thread([s = impl_->shards_[i].get(), spin = impl_->spin, i] {
      // Named for top -H, perf and /proc/PID/task/*/comm (at most 15 characters).
      const std::string name = "nudge-io-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      actors::set_local_unit(s->unit.get());
      gateway::set_lane_here(&s->lane);
      run_io(s->ioc, spin);
      gateway::set_lane_here(nullptr);
      actors::set_local_unit(nullptr);
    });
  return bound;
}

void server::stop_accepting() {
  if (impl_->lst)
    impl_->lst->close();
}

void server::stop() {
  for (auto& sh : impl_->shards_) {
    sh->busy.reset();
    sh->ioc.stop();
  }
  for (auto& sh : impl_->shards_)
    if (sh->thread.joinable())
      sh->thread.join();
  for (auto& sh : impl_->shards_)
    if (sh->unit)
      sh->unit->hand_over();
}

}  // namespace nudge::net
