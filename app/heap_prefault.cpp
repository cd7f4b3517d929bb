#include "app/heap_prefault.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace nudge::app {

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool glibc_heap = false;
#else
constexpr bool glibc_heap = true;
#endif

std::uintptr_t page_down(std::uintptr_t a) {
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  return a & ~(page - 1);
}

std::uintptr_t current_break() {
  return reinterpret_cast<std::uintptr_t>(::sbrk(0));
}

}  // namespace

heap_prefault::heap_prefault() : supported_(glibc_heap) {
  if (!supported_)
    return;
  // The arena's bytes from the break: its start lies that far below (whatever the main
  // arena handed out since is touched; populating it again costs a page-table walk).
  const std::uintptr_t brk = current_break();
  const std::size_t arena = ::mallinfo2().arena;
  done_ = page_down(arena <= brk ? brk - arena : brk);
}

std::size_t heap_prefault::step(std::size_t max_bytes, std::size_t slice) {
  if (!supported_ || slice == 0)
    return 0;
  const std::uintptr_t end = page_down(current_break());
  if (end <= done_) {
    done_ = end;  // trimmed: what grows back is untouched again
    return 0;
  }
  std::size_t populated = 0;
  while (done_ < end && populated < max_bytes) {
    const std::size_t len = std::min<std::size_t>({slice, end - done_, max_bytes - populated});
    if (::madvise(reinterpret_cast<void*>(done_), len, MADV_POPULATE_WRITE) != 0) {
      if (errno == EINVAL) {
        supported_ = false;  // a kernel without it
        return populated;
      }
      // ENOMEM: part of the range is not mapped (trimmed under us, or a heap that is
      // not one contiguous mapping): start again from the break as it is now, and
      // populate what it grows by. EINTR, EAGAIN: the next step tries again.
      if (errno == ENOMEM)
        done_ = page_down(current_break());
      return populated;
    }
    done_ += len;
    populated += len;
  }
  return populated;
}

}  // namespace nudge::app
