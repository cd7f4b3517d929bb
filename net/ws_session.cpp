#include "net/ws_session.hpp"

#include "actors/wire.hpp"
#include "net/gateway.hpp"

#include <spdlog/spdlog.h>

namespace nudge::net {

ws_session::ws_session(flex_stream&& stream, gateway& gw, const stream_source& source, gateway::address_slot slot)
  : ws_(std::move(stream)), gw_(gw), source_(source), decoder_(gw.options()), message_deadline_(ws_.get_executor()),
    slot_(std::move(slot)) {
  gw_.connections.fetch_add(1, std::memory_order_relaxed);
}

ws_session::~ws_session() {
  gw_.connections.fetch_sub(1, std::memory_order_relaxed);
}

void ws_session::run(http::request<http::string_body> req) {
  ws_.tcp().expires_never();
  websocket::stream_base::timeout t;
  t.handshake_timeout = gw_.options().http_timeout;  // the upgrade answer and the close handshake
  t.idle_timeout = gw_.options().ws_idle_timeout;
  t.keep_alive_pings = true;  // ping at half the idle time; close when no answer
  ws_.set_option(t);
  ws_.read_message_max(gw_.options().max_message_bytes);
  websocket::permessage_deflate pmd;
  pmd.server_enable = false;
  ws_.set_option(pmd);
  ws_.set_option(websocket::stream_base::decorator(
    [](websocket::response_type& res) { res.set(http::field::server, "nudge"); }));
  ws_.async_accept(req, beast::bind_front_handler(&ws_session::on_accept, shared_from_this()));
}

void ws_session::on_accept(beast::error_code ec) {
  if (ec)
    return;
  do_read();
}

void ws_session::do_read() {
  // The rest of a partly read message is read whatever the in-flight count: its
  // deadline runs.
  if (closed_ || reading_ || (!deadline_armed_ && inflight_ >= gw_.options().ws_max_inflight))
    return;
  reading_ = true;
  // read_some ends at frame boundaries, so a message in many fragments (or a trickle)
  // is seen as partial; read_message_max still bounds the whole message.
  ws_.async_read_some(buffer_, 0, in_arena(arena_, beast::bind_front_handler(&ws_session::on_read, shared_from_this())));
}

void ws_session::on_read(beast::error_code ec, std::size_t) {
  reading_ = false;
  if (ec) {
    // message_too_big: Beast has already failed the connection with close code 1009.
    closed_ = true;
    disarm_deadline();
    return;
  }
  if (!ws_.is_message_done()) {
    if (!deadline_armed_) {
      deadline_armed_ = true;
      message_deadline_.expires_after(gw_.options().http_timeout);
      message_deadline_.async_wait(beast::bind_front_handler(&ws_session::on_message_deadline, shared_from_this()));
    }
    do_read();
    return;
  }
  disarm_deadline();
  auto data = buffer_.cdata();
  handle_frame({static_cast<const char*>(data.data()), data.size()},
               ws_.got_text() ? actors::wire_format::json : actors::wire_format::msgpack);
  buffer_.consume(buffer_.size());
  do_read();
}

void ws_session::disarm_deadline() {
  if (deadline_armed_) {
    deadline_armed_ = false;
    message_deadline_.cancel();
  }
}

void ws_session::on_message_deadline(beast::error_code ec) {
  // Cancelled (the message completed, or the connection ended): nothing to do. A
  // cancel that raced with the expiry finds the deadline disarmed.
  if (ec || !deadline_armed_ || closed_)
    return;
  gw_.ws_dropped.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("closing a WebSocket client of source {}: a message not complete within http_timeout", source_.id);
  close_now();
}

void ws_session::handle_frame(std::string_view bytes, actors::wire_format fmt) {
  push_format_ = fmt;
  auto env = actors::make_envelope();
  decode_error err;
  if (!decoder_.decode(bytes, fmt, source_, env->msg, err)) {
    send(actors::encode_for(fmt, actors::error_reply(err.id, err.code, err.message)));
    return;
  }
  if (source_.limiter && !source_.limiter->try_take(1)) {
    send(actors::encode_for(fmt, actors::error_reply(env->msg.id, "rate_limited", "the source's rate limit is exhausted")));
    return;
  }
  env->sink = shared_from_this();
  env->format = fmt;
  ++inflight_;
  gw_.inflight.fetch_add(1, std::memory_order_relaxed);
  gw_.dispatch(std::move(env), &route_);
}

void ws_session::deliver(std::size_t slot, std::string bytes, int status) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), slot, bytes = std::move(bytes), status]() mutable {
    self->deliver_here(slot, std::move(bytes), status);
  });
}

void ws_session::deliver_here(std::size_t, std::string bytes, int) {
  --inflight_;
  gw_.inflight.fetch_sub(1, std::memory_order_relaxed);
  send(std::move(bytes));
  do_read();
}

void ws_session::push(std::string json) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), json = std::move(json)]() mutable {
    self->send(actors::encode_for(self->push_format_, std::move(json)));
  });
}

void ws_session::send(std::string bytes) {
  if (closed_)
    return;
  if (queued_bytes_ + bytes.size() > gw_.options().ws_max_pending_bytes) {
    drop();
    return;
  }
  queued_bytes_ += bytes.size();
  queue_.push_back(std::move(bytes));
  if (queue_.size() > 1)
    return;
  do_write();
}

void ws_session::do_write() {
  // A JSON reply starts with '{'; a MessagePack map never does (0x7b is a fixint).
  const auto& front = queue_.front();
  ws_.text(!front.empty() && front[0] == '{');
  ws_.async_write(asio::buffer(front), in_arena(arena_, beast::bind_front_handler(&ws_session::on_write, shared_from_this())));
}

void ws_session::on_write(beast::error_code ec, std::size_t) {
  if (ec) {
    closed_ = true;
    queue_.clear();
    queued_bytes_ = 0;
    return;
  }
  queued_bytes_ -= queue_.front().size();
  queue_.pop_front();
  if (!queue_.empty() && !closed_)
    do_write();
}

void ws_session::drop() {
  // The peer stopped reading: a close handshake would queue behind the stuck write,
  // so the socket is closed outright.
  gw_.ws_dropped.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("dropping a WebSocket client of source {}: unsent replies over the bound", source_.id);
  close_now();
}

void ws_session::close_now() {
  closed_ = true;
  disarm_deadline();
  beast::error_code ignored;
  ws_.tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  ws_.tcp().socket().close(ignored);
}

}  // namespace nudge::net
