// The per-thread block lists behind make_envelope(): a freed block is handed out
// again on the thread that freed it, a list is bounded, and an envelope made in a
// recycled block starts empty.
#include <catch2/catch.hpp>

#include "actors/message.hpp"
#include "actors/recycling_allocator.hpp"

#include <array>
#include <thread>
#include <vector>

namespace nudge::actors {
namespace {

#if !defined(__SANITIZE_ADDRESS__)
struct block {
  std::array<char, 96> bytes{};
};

TEST_CASE("a freed block is handed out again on the thread that freed it", "[actors][recycling]") {
  recycling_allocator<block> alloc;
  block* a = alloc.allocate(1);
  alloc.deallocate(a, 1);
  CHECK(alloc.allocate(1) == a);
  // Freed on another thread: that thread's list keeps it (and frees it when the thread
  // ends).
  block* b = alloc.allocate(1);
  block* seen_there = nullptr;
  std::thread([&] {
    alloc.deallocate(b, 1);
    seen_there = alloc.allocate(1);
    alloc.deallocate(seen_there, 1);
  }).join();
  CHECK(seen_there == b);
  // This thread's list holds only what this thread freed.
  alloc.deallocate(a, 1);
  CHECK(alloc.allocate(1) == a);
  alloc.deallocate(a, 1);
}

TEST_CASE("a thread keeps at most max_kept blocks; the rest go back to the heap", "[actors][recycling]") {
  recycling_allocator<block> alloc;
  std::thread([&] {
    const std::size_t n = recycling_allocator<block>::max_kept + 10;
    std::vector<block*> blocks;
    for (std::size_t i = 0; i < n; ++i)
      blocks.push_back(alloc.allocate(1));
    for (auto* p : blocks)
      alloc.deallocate(p, 1);
    // The first max_kept freed are kept (handed out last freed first); the last ten
    // went back to the heap.
    std::vector<block*> again;
    for (std::size_t i = 0; i < recycling_allocator<block>::max_kept; ++i)
      again.push_back(alloc.allocate(1));
    CHECK(again.front() == blocks[recycling_allocator<block>::max_kept - 1]);
    CHECK(again.back() == blocks.front());
    for (auto* p : again)
      alloc.deallocate(p, 1);
  }).join();
}
#endif

TEST_CASE("an envelope made in a recycled block starts empty", "[actors][recycling]") {
  std::weak_ptr<envelope> first;
  {
    auto env = make_envelope();
    env->msg.id = "a-message-id-longer-than-small-strings";
    env->msg.explain = true;
    env->msg.identities.push_back({"anonymous_id", "a-1"});
    env->slot = 7;
    env->format = wire_format::msgpack;
    first = env;
  }
  CHECK(first.expired());
  auto env = make_envelope();
  CHECK(env->msg.id.empty());
  CHECK_FALSE(env->msg.explain);
  CHECK(env->msg.identities.empty());
  CHECK(env->slot == 0);
  CHECK(env->format == wire_format::json);
  CHECK(env->sink == nullptr);
}

}  // namespace
}  // namespace nudge::actors
