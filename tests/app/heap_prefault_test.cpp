#include "app/heap_prefault.hpp"

#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace {

/// Pages of [from, to) that are resident (mincore).
std::size_t resident_pages(std::uintptr_t from, std::uintptr_t to) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((to - from + page - 1) / page);
  REQUIRE(::mincore(reinterpret_cast<void*>(from), to - from, vec.data()) == 0);
  std::size_t n = 0;
  for (unsigned char v : vec)
    n += v & 1;
  return n;
}

}  // namespace

TEST_CASE("heap_prefault populates the heap's untouched tail up to the break", "[app][heap_prefault]") {
  nudge::app::heap_prefault tail;
  if (!tail.supported()) {
    WARN("a sanitizer's allocator replaces glibc's heap: nothing to populate");
    CHECK(tail.step(std::size_t{64} << 20) == 0);
    return;
  }
  tail.step(std::size_t{1} << 30);  // what the arena already had
  // The break moved as malloc would move it for a top pad: 8 MiB that nothing touched
  // (kept: the arena treats a foreign sbrk as a gap it does not own).
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t grow = std::size_t{8} << 20;
  void* old_break = ::sbrk(static_cast<intptr_t>(grow));
  REQUIRE(old_break != reinterpret_cast<void*>(-1));
  const auto from = (reinterpret_cast<std::uintptr_t>(old_break) + page - 1) & ~(page - 1);
  const auto to = reinterpret_cast<std::uintptr_t>(::sbrk(0)) & ~(page - 1);
  REQUIRE(to > from);
  const std::size_t pages = (to - from) / page;
  CHECK(resident_pages(from, to) < pages);

  // A bounded step populates at most its budget, in slices.
  const std::size_t first = tail.step(std::size_t{1} << 20, std::size_t{256} << 10);
  CHECK(first > 0);
  CHECK(first <= (std::size_t{1} << 20));
  // The next ones catch up with the break, and then there is nothing left to do.
  for (int i = 0; i < 64 && tail.populated_to() < to; ++i)
    tail.step(std::size_t{4} << 20);
  CHECK(tail.populated_to() == to);
  CHECK(resident_pages(from, to) == pages);
  CHECK(tail.step(std::size_t{64} << 20) == 0);
  // The contents are what an untouched page holds: zeros.
  const auto* bytes = reinterpret_cast<const unsigned char*>(from);
  bool zeros = true;
  for (std::size_t i = 0; i < to - from; i += 512)
    zeros = zeros && bytes[i] == 0;
  CHECK(zeros);
}
