// echo_baseline: the transport-only floor for nudge_bench. A Beast WebSocket server that
// answers each message with a copy of itself, same size and same type (text/binary),
// and does nothing else. Shaped like the service's own sessions (STYLE.md, "Beast
// sessions"): one strand per connection, one async_write in flight with a bounded queue
// behind it, reading paused while the queue is full, one flat_buffer per session, and
// queue slots whose strings keep their capacity, so a steady stream allocates nothing.
//
// Two options make it a model of nudge's I/O thread, to tell the machine's share of a
// latency from the service's (docs/BENCHMARKS.md, "The open loop side by side"):
// --work-us burns that much of the thread's own CPU time per message before it answers,
// as a handler that parses, decides and commits would, and --spin-us polls after the
// last handler before sleeping, as `[server] io_spin_us` does (the same run_io).
//
// Prints "listening on http://HOST:PORT" once it accepts, like `nudge serve`.
// SIGINT/SIGTERM stop it with exit 0; exit 2 on bad usage or when it cannot listen.
#include <utility> // before Boost: asio's awaitable.hpp uses std::exchange (STYLE.md)

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <CLI/CLI.hpp>

#include "net/io_loop.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Replies queued per connection before the session stops reading.
constexpr std::size_t queue_limit = 64;
constexpr std::size_t read_message_max_bytes = 1 << 20;

// --work-us: CPU time each message costs before its reply is queued (0: none).
std::chrono::microseconds work_per_message{0};

std::chrono::nanoseconds thread_cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Spins until the calling thread has run `work` more on a CPU: time spent preempted
// does not count, as it would not for a handler's real work.
void burn(std::chrono::microseconds work) {
  if (work.count() <= 0)
    return;
  const auto until = thread_cpu_now() + work;
  while (thread_cpu_now() < until) {
  }
}

void fail(beast::error_code ec, const char* what) {
  // A peer going away is the normal end of a session, not worth a line.
  if (ec == websocket::error::closed || ec == net::error::operation_aborted ||
      ec == net::error::eof || ec == net::error::connection_reset || ec == beast::error::timeout)
    return;
  std::cerr << "echo_baseline: " << what << ": " << ec.message() << "\n";
}

class echo_session : public std::enable_shared_from_this<echo_session> {
public:
  explicit echo_session(tcp::socket&& socket) : ws_(std::move(socket)), queue_(queue_limit) {}

  void run() {
    net::dispatch(ws_.get_executor(),
                  beast::bind_front_handler(&echo_session::on_run, shared_from_this()));
  }

private:
  struct frame {
    std::string data;
    bool binary = false;
  };

  void on_run() {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(read_message_max_bytes);
    ws_.auto_fragment(false);
    ws_.async_accept(beast::bind_front_handler(&echo_session::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec) {
    if (ec)
      return fail(ec, "accept");
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&echo_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec)
      return fail(ec, "read");
    burn(work_per_message);
    frame& f = queue_[(head_ + size_) % queue_.size()];
    const auto data = buffer_.data();
    f.data.assign(static_cast<const char*>(data.data()), data.size());
    f.binary = ws_.got_binary();
    buffer_.consume(buffer_.size());
    if (++size_ == 1)
      do_write();
    // Back-pressure: a client that does not read its replies stops being read.
    if (size_ < queue_.size())
      do_read();
    else
      read_paused_ = true;
  }

  void do_write() {
    const frame& f = queue_[head_];
    ws_.binary(f.binary);
    ws_.async_write(net::buffer(f.data),
                    beast::bind_front_handler(&echo_session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec)
      return fail(ec, "write");
    head_ = (head_ + 1) % queue_.size();
    --size_;
    if (size_ > 0)
      do_write();
    if (read_paused_) {
      read_paused_ = false;
      do_read();
    }
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::vector<frame> queue_; // ring; queue_[head_] is being written
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  bool read_paused_ = false;
};

class listener : public std::enable_shared_from_this<listener> {
public:
  listener(net::io_context& ioc, tcp::acceptor&& acceptor)
      : ioc_(ioc), acceptor_(std::move(acceptor)) {}

  void run() { do_accept(); }

private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec) {
      fail(ec, "accept");
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<echo_session>(std::move(socket))->run();
    }
    if (acceptor_.is_open())
      do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"echo_baseline: a WebSocket server that echoes every message (nudge_bench's floor)"};
  std::string listen = "127.0.0.1:0";
  unsigned threads = 1;
  app.add_option("--listen", listen, "HOST:PORT; port 0 picks a free one")->capture_default_str();
  app.add_option("--threads", threads, "io_context threads")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  unsigned work_us = 0;
  unsigned spin_us = 0;
  app.add_option("--work-us", work_us, "CPU microseconds burnt per message before the reply")
      ->capture_default_str()
      ->check(CLI::Range(0u, 100000u));
  app.add_option("--spin-us", spin_us, "poll this long after the last handler before sleeping")
      ->capture_default_str()
      ->check(CLI::Range(0u, 100000u));
  CLI11_PARSE(app, argc, argv);
  work_per_message = std::chrono::microseconds(work_us);
  const std::chrono::microseconds spin(spin_us);

  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "echo_baseline: --listen must be HOST:PORT\n";
    return 2;
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port = listen.substr(colon + 1);

  net::io_context ioc(static_cast<int>(threads));
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints =
      resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    std::cerr << "echo_baseline: cannot resolve " << listen << ": " << ec.message() << "\n";
    return 2;
  }
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor.bind(endpoint, ec);
  if (!ec)
    acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "echo_baseline: cannot listen on " << listen << ": " << ec.message() << "\n";
    return 2;
  }
  const tcp::endpoint bound = acceptor.local_endpoint();
  std::make_shared<listener>(ioc, std::move(acceptor))->run();

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });

  const std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                    : bound.address().to_string();
  std::printf("listening on http://%s:%u\n", shown.c_str(), static_cast<unsigned>(bound.port()));
  std::fflush(stdout);

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i)
    workers.emplace_back([&ioc, spin] { nudge::net::run_io(ioc, spin); });
  nudge::net::run_io(ioc, spin);
  for (auto& t : workers)
    t.join();
  return 0;
}
