// The layer under the WebSocket sessions that gathers a burst of writes into one
// write below: over a real loopback TCP connection, with Beast's WebSocket on top.
#include <catch2/catch.hpp>

#include "net/write_coalescer.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace nudge::net {
namespace {

/// A beast::tcp_stream that counts the writes made on it (what the layer sends below).
class counting_stream : public beast::tcp_stream {
public:
  using beast::tcp_stream::tcp_stream;
  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    ++*writes;
    return beast::tcp_stream::async_write_some(buffers, std::forward<WriteHandler>(handler));
  }
  std::shared_ptr<std::size_t> writes = std::make_shared<std::size_t>(0);
};

/// A connected loopback pair: `server` accepted, `client` connected.
struct tcp_pair {
  asio::io_context ioc{1};
  tcp::socket server{ioc};
  tcp::socket client{ioc};
  tcp_pair() {
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    server = acceptor.accept();
  }
  /// Runs handlers, waiting for them, until `done` holds (at most ~10 s).
  template <class Pred>
  void run_until(Pred done) {
    for (int i = 0; i < 2000 && !done(); ++i) {
      ioc.restart();
      ioc.run_one_for(std::chrono::milliseconds(5));
    }
  }
  /// Runs ready handlers until none is left (bounded).
  void settle() {
    ioc.restart();  // a run that found no work has stopped it
    for (int i = 0; i < 1000 && ioc.poll() > 0; ++i) {
    }
    ioc.restart();
  }
};

TEST_CASE("writes started one from another's completion leave in fewer writes below, whole and in order",
          "[net][write_coalescer]") {
  tcp_pair p;
  write_coalescer<counting_stream> layer(std::move(p.server));
  auto writes_below = layer.next_layer().writes;
  constexpr int n = 20;
  std::vector<std::size_t> completed;
  std::vector<std::string> parts;
  for (int i = 0; i < n; ++i)
    parts.push_back("part-" + std::to_string(i) + ";");
  std::function<void(int)> write_from = [&](int i) {
    layer.async_write_some(asio::buffer(parts[i]), [&, i](beast::error_code ec, std::size_t bytes) {
      REQUIRE_FALSE(ec);
      completed.push_back(bytes);
      if (i + 1 < n)
        write_from(i + 1);
    });
  };
  write_from(0);
  CHECK(completed.empty());  // never completes inside the call that starts it
  p.settle();
  REQUIRE(completed.size() == n);
  std::string expected;
  for (int i = 0; i < n; ++i) {
    CHECK(completed[i] == parts[i].size());
    expected += parts[i];
  }
  // The first goes out at once; the other 19 together once the burst has ended.
  CHECK(*writes_below == 2);
  std::string got(expected.size(), '\0');
  asio::read(p.client, asio::buffer(got));
  CHECK(got == expected);
}

TEST_CASE("a peer that stops reading holds the writer's completions, and its close fails them",
          "[net][write_coalescer]") {
  tcp_pair p;
  write_coalescer<beast::tcp_stream> layer(std::move(p.server));
  const std::string chunk(64 * 1024, 'x');
  std::size_t completed = 0;
  std::size_t failed = 0;
  bool pending = false;
  std::function<void()> write_next = [&] {
    pending = true;
    layer.async_write_some(asio::buffer(chunk), [&](beast::error_code ec, std::size_t) {
      pending = false;
      if (ec) {
        ++failed;
        return;
      }
      ++completed;
      if (completed < 4096)  // 256 MiB: far more than loopback's socket buffers hold
        write_next();
    });
  };
  write_next();
  // The client reads nothing: once the kernel's buffers are full, the write below
  // stays out and the layer stops completing writes through it.
  for (int i = 0; i < 200 && pending; ++i) {  // ~1 s of the writer's handlers
    p.settle();
    p.ioc.run_one_for(std::chrono::milliseconds(5));
  }
  INFO("completed " << completed << " failed " << failed);
  REQUIRE(pending);
  CHECK(completed < 4096);
  const std::size_t held_at = completed;
  p.settle();
  CHECK(completed == held_at);
  // The peer goes: the write below fails, and so does the held one.
  p.client.close();
  p.run_until([&] { return !pending; });
  CHECK_FALSE(pending);
  CHECK(failed == 1);
  // Later writes get the error too.
  beast::error_code later;
  bool done = false;
  layer.async_write_some(asio::buffer(chunk), [&](beast::error_code ec, std::size_t) {
    later = ec;
    done = true;
  });
  p.settle();
  CHECK(done);
  CHECK(later);
}

TEST_CASE("a WebSocket over the layer delivers a burst of messages in order and closes after them",
          "[net][write_coalescer]") {
  tcp_pair p;
  websocket::stream<write_coalescer<beast::tcp_stream>> server(std::move(p.server));
  websocket::stream<tcp::socket> client(std::move(p.client));
  bool accepted = false;
  server.async_accept([&](beast::error_code ec) { accepted = !ec; });
  // The client is synchronous, on a thread of its own; the server runs here.
  std::thread handshake([&] { client.handshake("127.0.0.1", "/"); });
  p.run_until([&] { return accepted; });
  handshake.join();
  REQUIRE(accepted);

  constexpr int n = 50;
  std::vector<std::string> messages;
  for (int i = 0; i < n; ++i)
    messages.push_back(std::string(static_cast<std::size_t>(1 + i * 37), static_cast<char>('a' + i % 26)));
  int written = 0;
  std::function<void()> write_next = [&] {
    server.text(true);
    server.async_write(asio::buffer(messages[written]), [&](beast::error_code ec, std::size_t) {
      REQUIRE_FALSE(ec);
      if (++written < n)
        write_next();
      else
        server.async_close(websocket::close_code::normal, [](beast::error_code) {});
    });
  };
  write_next();
  std::vector<std::string> got;
  beast::error_code read_ec;
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    for (int i = 0; i < n + 1; ++i) {
      beast::flat_buffer b;
      client.read(b, read_ec);
      if (read_ec)
        break;
      got.push_back(beast::buffers_to_string(b.data()));
    }
    reader_done = true;
  });
  p.run_until([&] { return reader_done.load(); });
  reader.join();
  REQUIRE(got.size() == n);
  for (int i = 0; i < n; ++i)
    CHECK(got[i] == messages[i]);
  // The close frame came after the burst, through the layer.
  CHECK(read_ec == websocket::error::closed);
}

}  // namespace
}  // namespace nudge::net
