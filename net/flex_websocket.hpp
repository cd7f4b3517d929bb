// A WebSocket over a flex_stream: the same calls whether the connection is plain TCP
// (ws://) or TLS (wss://). Used by ws_session on its strand, like the Beast
// websocket::stream it holds.
#pragma once

#include "net/flex_stream.hpp"
#include "net/write_coalescer.hpp"

#include <utility>
#include <variant>

namespace nudge::net {

class flex_websocket {
public:
  // Replies written in a burst leave in one write (net/write_coalescer.hpp).
  using plain_ws = websocket::stream<write_coalescer<flex_stream::plain_stream>>;
  using tls_ws = websocket::stream<write_coalescer<flex_stream::tls_stream>>;

  /// Takes over an HTTP connection for the upgrade.
  explicit flex_websocket(flex_stream&& s)
    : v_(s.visit([](auto& inner) -> std::variant<plain_ws, tls_ws> {
        using inner_t = std::decay_t<decltype(inner)>;
        if constexpr (std::is_same_v<inner_t, flex_stream::plain_stream>)
          return std::variant<plain_ws, tls_ws>(std::in_place_type<plain_ws>, std::move(inner));
        else
          return std::variant<plain_ws, tls_ws>(std::in_place_type<tls_ws>, std::move(inner));
      })) {}

  tcp_stream& tcp() noexcept {
    return std::visit([](auto& ws) -> tcp_stream& { return beast::get_lowest_layer(ws); }, v_);
  }
  auto get_executor() { return tcp().get_executor(); }

  template <class Option>
  void set_option(Option opt) {
    std::visit([&](auto& ws) { ws.set_option(std::move(opt)); }, v_);  // one branch runs
  }
  void read_message_max(std::size_t n) {
    std::visit([&](auto& ws) { ws.read_message_max(n); }, v_);
  }
  bool got_text() const {
    return std::visit([](const auto& ws) { return ws.got_text(); }, v_);
  }
  bool is_message_done() const {
    return std::visit([](const auto& ws) { return ws.is_message_done(); }, v_);
  }
  void text(bool value) {
    std::visit([&](auto& ws) { ws.text(value); }, v_);
  }

  template <class Request, class Handler>
  void async_accept(const Request& req, Handler&& h) {
    std::visit([&](auto& ws) { ws.async_accept(req, std::forward<Handler>(h)); }, v_);
  }
  /// Reads what has arrived of the current message, up to a frame boundary.
  template <class Handler>
  void async_read_some(beast::flat_buffer& buffer, std::size_t limit, Handler&& h) {
    std::visit([&](auto& ws) { ws.async_read_some(buffer, limit, std::forward<Handler>(h)); }, v_);
  }
  template <class Buffers, class Handler>
  void async_write(const Buffers& buffers, Handler&& h) {
    std::visit([&](auto& ws) { ws.async_write(buffers, std::forward<Handler>(h)); }, v_);
  }

private:
  std::variant<plain_ws, tls_ws> v_;
};

}  // namespace nudge::net
