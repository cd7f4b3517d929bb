// A connection's byte stream: plain TCP, or TLS over TCP when `[server] tls_cert` and
// `tls_key` are set (then every connection is TLS: https:// and wss:// only). One
// object per connection, used on its strand like the Beast stream it holds; the HTTP
// and WebSocket sessions stay single classes and call through it.
#pragma once

#include "net/beast.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <utility>
#include <variant>

namespace nudge::net {

class flex_stream {
public:
  using plain_stream = tcp_stream;
  using tls_stream = beast::ssl_stream<tcp_stream>;

  explicit flex_stream(plain_stream s) : v_(std::in_place_type<plain_stream>, std::move(s)) {}
  explicit flex_stream(tls_stream s) : v_(std::in_place_type<tls_stream>, std::move(s)) {}

  bool is_tls() const noexcept { return std::holds_alternative<tls_stream>(v_); }
  tcp_stream& tcp() noexcept { return std::visit([](auto& s) -> tcp_stream& { return beast::get_lowest_layer(s); }, v_); }
  auto get_executor() { return tcp().get_executor(); }

  template <class Duration>
  void expires_after(Duration d) { tcp().expires_after(d); }
  void expires_never() { tcp().expires_never(); }

  /// TLS: the server handshake (a no-op completing at once for plain TCP is not
  /// offered: call only when is_tls()).
  template <class Handler>
  void async_handshake(Handler&& h) {
    std::get<tls_stream>(v_).async_handshake(asio::ssl::stream_base::server, std::forward<Handler>(h));
  }

  template <class Parser, class Handler>
  void async_read(beast::flat_buffer& buffer, Parser& parser, Handler&& h) {
    std::visit([&](auto& s) { http::async_read(s, buffer, parser, std::forward<Handler>(h)); }, v_);
  }

  template <class Message, class Handler>
  void async_write(Message& msg, Handler&& h) {
    std::visit([&](auto& s) { http::async_write(s, msg, std::forward<Handler>(h)); }, v_);
  }

  /// Ends the connection after a response that closes it: half-close for TCP; TLS
  /// gets no close_notify round trip (the response said Connection: close).
  void shutdown() {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  template <class F>
  decltype(auto) visit(F&& f) { return std::visit(std::forward<F>(f), v_); }

private:
  std::variant<plain_stream, tls_stream> v_;
};

}  // namespace nudge::net
