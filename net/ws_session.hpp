// A WebSocket connection on GET /v1/stream (after the upgrade).
//
// Runs on its executor, the io_context of one I/O thread (a shard; no strand needed).
// Reads one frame at a time into one reused buffer, decodes it, answers bad messages at
// once and hands good ones to the gateway; replies come back through deliver() (any
// thread), which posts onto the executor, or in a batch through its thread's reply
// lane (deliver_here() on that thread). Reads and writes allocate from a per-session arena. One async_write
// in flight, a queue behind it bounded by ws_max_pending_bytes: a client that stops
// reading is dropped once its unsent replies pass the bound. Reading pauses while
// ws_max_inflight messages await replies. Frames over max_message_bytes close the
// connection with 1009; idle peers are pinged and closed when they stop answering.
// A message must arrive whole within http_timeout of its first bytes: reads go frame
// by frame, and a message still partial when that deadline passes closes the
// connection (a peer trickling bytes would otherwise keep it open for ever, since any
// byte counts as activity for the idle timeout).
#pragma once

#include "actors/message.hpp"
#include "net/flex_websocket.hpp"
#include "net/decoder.hpp"
#include "net/gateway.hpp"
#include "net/handler_arena.hpp"

#include <deque>
#include <memory>
#include <string>

namespace nudge::net {


class ws_session : public actors::reply_sink, public std::enable_shared_from_this<ws_session> {
public:
  /// Takes over the HTTP connection (plain or TLS) that asked for the upgrade.
  ws_session(flex_stream&& stream, gateway& gw, const stream_source& source, gateway::address_slot slot = {});
  ~ws_session() override;

  /// Accepts the upgrade `req` (already authenticated) and starts reading.
  void run(http::request<http::string_body> req);

  void deliver(std::size_t slot, std::string bytes, int status) override;
  actors::reply_lane* lane() const noexcept override { return lane_; }
  void deliver_here(std::size_t slot, std::string bytes, int status) override;
  std::string_view push_channel() const noexcept override { return source_.channel; }
  void push(std::string json) override;

private:
  void on_accept(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, std::size_t n);
  void handle_frame(std::string_view bytes, actors::wire_format fmt);
  void send(std::string bytes);
  void do_write();
  void on_write(beast::error_code ec, std::size_t n);
  void drop();
  void disarm_deadline();
  void on_message_deadline(beast::error_code ec);
  void close_now();

  handler_arena arena_;  // before ws_: its operations' memory outlives the stream
  flex_websocket ws_;
  gateway& gw_;
  const stream_source& source_;
  /// The lane of the I/O thread (shard) the session runs on, taken when it is made
  /// (on that thread: the upgrade handler of http_session); null off the I/O threads.
  actors::reply_lane* const lane_ = gateway::lane_here();
  decoder decoder_;
  beast::flat_buffer buffer_;
  asio::steady_timer message_deadline_;  ///< armed while a message is partly read
  bool deadline_armed_ = false;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t inflight_ = 0;
  bool reading_ = false;
  bool closed_ = false;
  /// The encoding of the latest message read: pushes (which answer no request) go out
  /// in it, so a MessagePack client gets binary frames only.
  actors::wire_format push_format_ = actors::wire_format::json;
  // Resolution cache: the last identity set this connection sent and its profile.
  gateway::route_cache route_;
  gateway::address_slot slot_;  ///< its place in the per-address count
};

}  // namespace nudge::net
