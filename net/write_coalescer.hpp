// A stream layer under a WebSocket that gathers the frames written in a burst into
// one write of the layer below (one `sendmsg` for the replies a connection has queued
// instead of one per reply; docs/BENCHMARKS.md, "Replies coalesced per connection").
//
// A write through the layer when nothing is buffered or being written goes below at
// once. A write that comes while one is out below is copied into a buffer, and its
// completion runs from a loop of the layer's own (not through the back of the
// io_context's queue), so that the session's next queued reply is written into the
// buffer right away, and the next, until the session has nothing more; then the
// buffer goes below in one write. Once `max_buffered_bytes` are buffered, a write's
// completion waits for the write below to end: the session's own bound on unsent
// replies (ws_max_pending_bytes) stays in force for a peer that stops reading. A write
// below that fails is reported to every later write through the layer. Teardown
// (the end of a WebSocket close) waits until what is buffered has gone out.
//
// Reads pass through. One write through the layer at a time (a Beast WebSocket
// stream serialises its writes, control frames included). Single-threaded: used on
// its connection's executor. The state lives in a shared block that the layer's
// pending steps hold, so the layer (and the stream below it) may be destroyed while
// they are queued. A held completion is allocated with its handler's associated
// allocator (the session's arena), as asio allocates an operation; the layer's own
// operations come from an arena of its own.
#pragma once

#include "net/beast.hpp"
#include "net/handler_arena.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace nudge::net {

template <class NextLayer>
class write_coalescer {
public:
  using next_layer_type = NextLayer;
  using executor_type = typename NextLayer::executor_type;
  static constexpr std::size_t max_buffered_bytes = 64 * 1024;

  template <class... Args>
  explicit write_coalescer(Args&&... args) : st_(std::make_shared<state>()) {
    st_->next.emplace(std::forward<Args>(args)...);
  }
  write_coalescer(write_coalescer&&) noexcept = default;
  write_coalescer& operator=(write_coalescer&&) noexcept = default;
  ~write_coalescer() {
    if (st_)
      st_->next.reset();  // cancels a write below; its completion finds the layer gone
  }

  executor_type get_executor() noexcept { return st_->next->get_executor(); }
  NextLayer& next_layer() noexcept { return *st_->next; }
  const NextLayer& next_layer() const noexcept { return *st_->next; }

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return st_->next->async_read_some(buffers, std::forward<ReadHandler>(handler));
  }

  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return asio::async_initiate<WriteHandler, void(beast::error_code, std::size_t)>(
      [st = st_](auto h, const ConstBufferSequence& b) { write(st, std::move(h), b); }, handler, buffers);
  }

  /// Beast's WebSocket close (and a failed read) ends with a teardown of the layer
  /// below: what is buffered goes out first (or has failed), then the teardown runs.
  template <class TeardownHandler>
  void async_teardown_below(beast::role_type role, TeardownHandler&& handler) {
    auto& s = *st_;
    auto next = [st = st_, role, h = std::forward<TeardownHandler>(handler)](beast::error_code) mutable {
      if (!st->next) {
        asio::post(beast::bind_front_handler(std::move(h), beast::error_code(asio::error::operation_aborted)));
        return;
      }
      using websocket::async_teardown;
      async_teardown(role, *st->next, std::move(h));
    };
    if (s.error || (!s.writing && s.fill.empty()))
      asio::post(get_executor(), beast::bind_front_handler(std::move(next), s.error));
    else
      s.drained = make_call(std::move(next), 0);
  }

private:
  /// A completion held by the layer (type-erased: Beast's operations differ).
  struct call {
    virtual void invoke(beast::error_code ec) = 0;  ///< frees the call, then runs it
    virtual void destroy() = 0;                     ///< frees it without running it

  protected:
    ~call() = default;
  };
  template <class Handler>
  struct held final : call {
    using allocator = typename std::allocator_traits<asio::associated_allocator_t<Handler>>::template rebind_alloc<held>;
    held(Handler h, std::size_t n) : h_(std::move(h)), n_(n) {}
    void invoke(beast::error_code ec) override {
      Handler h(std::move(h_));
      const std::size_t n = n_;
      free(allocator(asio::get_associated_allocator(h)));
      // On the handler's executor: the connection's, which runs this very code.
      if constexpr (std::is_invocable_v<Handler&, beast::error_code, std::size_t>)
        std::move(h)(ec, ec ? 0 : n);
      else
        std::move(h)(ec);
    }
    void destroy() override { free(allocator(asio::get_associated_allocator(h_))); }
    void free(allocator a) {
      std::allocator_traits<allocator>::destroy(a, this);
      std::allocator_traits<allocator>::deallocate(a, this, 1);
    }
    Handler h_;
    std::size_t n_;
  };
  template <class Handler>
  static call* make_call(Handler&& h, std::size_t n) {
    using held_t = held<std::decay_t<Handler>>;
    typename held_t::allocator a(asio::get_associated_allocator(h));
    auto* p = std::allocator_traits<typename held_t::allocator>::allocate(a, 1);
    std::allocator_traits<typename held_t::allocator>::construct(a, p, std::forward<Handler>(h), n);
    return p;
  }

  struct state {
    ~state() {
      // Only when the io_context goes away with the layer's steps still queued: its
      // handlers are destroyed, not run, as asio destroys what it still queues.
      for (call* c : {ready, held_write, drained})
        if (c)
          c->destroy();
    }
    std::optional<NextLayer> next;  ///< empty once the layer is destroyed
    std::string fill;               ///< written through the layer, not yet below
    std::string out;                ///< the write below in flight
    bool writing = false;
    bool running = false;      ///< run_ready's loop is on the stack, or posted
    call* ready = nullptr;     ///< the completion of the latest write, due now
    call* held_write = nullptr;  ///< due when the write below ends
    call* drained = nullptr;     ///< a teardown waiting for the buffer to empty
    beast::error_code error;     ///< a failed write below: every later write gets it
    /// The layer's own steps (the write below, the posted loop). asio frees an
    /// operation's memory before its handler, which holds this state, goes.
    handler_arena arena;
  };
  using state_ptr = std::shared_ptr<state>;

  template <class Handler, class ConstBufferSequence>
  static void write(const state_ptr& st, Handler h, const ConstBufferSequence& buffers) {
    auto& s = *st;
    const std::size_t n = asio::buffer_size(buffers);
    if (!s.error) {
      const std::size_t at = s.fill.size();
      s.fill.resize(at + n);
      asio::buffer_copy(asio::buffer(s.fill.data() + at, n), buffers);
    }
    // Nothing out below: no wait for a burst to form. A burst that has buffered
    // max_buffered_bytes goes below without waiting for its end.
    if (!s.error && !s.writing && (!s.running || s.fill.size() >= max_buffered_bytes))
      flush(st);
    call* c = make_call(std::move(h), n);
    if (!s.error && s.writing && s.fill.size() >= max_buffered_bytes) {
      s.held_write = c;
      return;
    }
    s.ready = c;
    if (!s.running) {
      s.running = true;
      asio::post(s.next->get_executor(), in_arena(s.arena, [st] { run_ready(st); }));
    }
  }

  /// Runs the due completion, and the one its handler's next write makes due, and so
  /// on; then sends what they buffered.
  static void run_ready(const state_ptr& st) {
    auto& s = *st;
    s.running = true;
    while (s.ready)
      std::exchange(s.ready, nullptr)->invoke(s.error);
    s.running = false;
    if (s.next && !s.writing && !s.error && !s.fill.empty())
      flush(st);
  }

  static void flush(const state_ptr& st) {
    auto& s = *st;
    s.writing = true;
    s.out.swap(s.fill);
    asio::async_write(*s.next, asio::buffer(s.out),
                      in_arena(s.arena, [st](beast::error_code ec, std::size_t) { on_flushed(st, ec); }));
  }

  static void on_flushed(const state_ptr& st, beast::error_code ec) {
    auto& s = *st;
    s.writing = false;
    s.out.clear();
    if (!s.next && !ec)
      ec = asio::error::operation_aborted;
    if (ec) {
      s.error = ec;
      s.fill.clear();
    }
    if (s.held_write)
      s.ready = std::exchange(s.held_write, nullptr);
    if (!s.running)
      run_ready(st);  // sends what came meanwhile, and what the due completion adds
    if (!s.writing && s.drained && (s.error || s.fill.empty()))
      std::exchange(s.drained, nullptr)->invoke(s.error);
  }

  state_ptr st_;
};

/// Beast finds these through argument-dependent lookup for a stream's next layer.
template <class NextLayer>
void teardown(beast::role_type role, write_coalescer<NextLayer>& s, beast::error_code& ec) {
  // Synchronous close: not used by the sessions (they close asynchronously), and a
  // blocking flush has no place on an I/O thread, so what is buffered is dropped.
  using websocket::teardown;
  teardown(role, s.next_layer(), ec);
}

template <class NextLayer, class TeardownHandler>
void async_teardown(beast::role_type role, write_coalescer<NextLayer>& s, TeardownHandler&& handler) {
  s.async_teardown_below(role, std::forward<TeardownHandler>(handler));
}

}  // namespace nudge::net
