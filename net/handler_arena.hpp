// Recycled memory for one session's asynchronous operations (asio's "custom handler
// allocation" pattern). Beast composes a WebSocket write or read into an operation
// larger than asio's per-thread recycling cache (about 1 KiB), so without this every
// frame allocated and freed one through malloc. A session has at most one read and
// one write in flight, and each holds two blocks at once: Beast's operation and,
// inside it, the socket's send or receive operation (which the basic_stream wraps).
// Four fixed blocks therefore serve nearly all of them; larger or extra requests fall
// back to operator new. asio frees an operation's memory before it invokes the
// handler, so the next operation started from the handler reuses it.
//
// Not thread-safe: the session's operations run on one thread (its executor).
#pragma once

#include <array>
#include <cstddef>
#include <new>
#include <utility>

namespace nudge::net {

class handler_arena {
public:
  handler_arena() = default;
  handler_arena(const handler_arena&) = delete;
  handler_arena& operator=(const handler_arena&) = delete;

  void* allocate(std::size_t n) {
    for (auto& b : blocks_)
      if (!b.used && n <= sizeof b.mem) {
        b.used = true;
        return b.mem;
      }
    return ::operator new(n);
  }

  void deallocate(void* p) noexcept {
    for (auto& b : blocks_)
      if (p == static_cast<void*>(b.mem)) {
        b.used = false;
        return;
      }
    ::operator delete(p);
  }

private:
  static constexpr std::size_t block_bytes = 1024;  // a plain WebSocket read or write: ~700 B
  struct block {
    alignas(std::max_align_t) unsigned char mem[block_bytes];
    bool used = false;
  };
  std::array<block, 4> blocks_;
};

template <class T>
class arena_allocator {
public:
  using value_type = T;
  explicit arena_allocator(handler_arena& a) noexcept : arena_(&a) {}
  template <class U>
  arena_allocator(const arena_allocator<U>& other) noexcept : arena_(other.arena_) {}
  T* allocate(std::size_t n) { return static_cast<T*>(arena_->allocate(sizeof(T) * n)); }
  void deallocate(T* p, std::size_t) noexcept { arena_->deallocate(p); }
  template <class U>
  bool operator==(const arena_allocator<U>& other) const noexcept { return arena_ == other.arena_; }

private:
  template <class>
  friend class arena_allocator;
  handler_arena* arena_;
};

/// Wraps a completion handler so that asio and Beast allocate its operations from `arena`.
template <class Handler>
class arena_handler {
public:
  using allocator_type = arena_allocator<void>;
  arena_handler(handler_arena& arena, Handler h) : arena_(&arena), h_(std::move(h)) {}
  allocator_type get_allocator() const noexcept { return allocator_type(*arena_); }
  template <class... Args>
  void operator()(Args&&... args) {
    h_(std::forward<Args>(args)...);
  }

private:
  handler_arena* arena_;
  Handler h_;
};

template <class Handler>
arena_handler<Handler> in_arena(handler_arena& arena, Handler h) {
  return arena_handler<Handler>(arena, std::move(h));
}

}  // namespace nudge::net
