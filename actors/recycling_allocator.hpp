// An allocator that keeps freed blocks of its one size in a list per thread and hands
// them out again, for objects made and dropped once per message (an envelope and its
// shared_ptr control block, through std::allocate_shared).
//
// Why: an envelope (~630 B) is the largest block a message allocates, and with a
// thousand of them in flight glibc's per-thread cache (7 blocks per size) is always
// empty for it, so each one took malloc's slow path (a profile put that allocation at
// ~4% of the I/O thread's samples). Blocks freed on another thread join that thread's
// list; each list is bounded, past which blocks go back to the heap. Under ASan the
// heap is used directly, so that a use after free of an envelope is still caught.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace nudge::actors {

template <class T>
class recycling_allocator {
public:
  using value_type = T;
  /// Blocks a thread keeps at most, per block type.
  static constexpr std::size_t max_kept = 4096;

  recycling_allocator() noexcept = default;
  template <class U>
  recycling_allocator(const recycling_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
#if !defined(__SANITIZE_ADDRESS__)
    if (n == 1 && !gone()) {
      auto& kept = list();
      if (!kept.blocks.empty()) {
        void* p = kept.blocks.back();
        kept.blocks.pop_back();
        return static_cast<T*>(p);
      }
    }
#endif
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }

  void deallocate(T* p, [[maybe_unused]] std::size_t n) noexcept {
#if !defined(__SANITIZE_ADDRESS__)
    if (n == 1 && !gone()) {
      auto& kept = list();
      if (kept.blocks.size() < max_kept) {
        // The list's own growth may throw; then the block goes back to the heap.
        try {
          kept.blocks.push_back(p);
          return;
        } catch (...) {
        }
      }
    }
#endif
    ::operator delete(p);
  }

  template <class U>
  bool operator==(const recycling_allocator<U>&) const noexcept {
    return true;
  }

private:
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);

  /// The calling thread's kept blocks of T; freed when the thread ends. Blocks freed
  /// after that, by the thread's later destructors, go back to the heap (gone()).
  struct kept_list {
    std::vector<void*> blocks;
    ~kept_list() {
      gone() = true;
      for (void* p : blocks)
        ::operator delete(p);
    }
  };
  /// Trivially destructible: readable at any point of the thread's exit.
  static bool& gone() noexcept {
    thread_local bool g = false;
    return g;
  }
  static kept_list& list() {
    thread_local kept_list kept;
    return kept;
  }
};

}  // namespace nudge::actors
