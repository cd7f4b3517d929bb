// The heap's untouched tail, faulted in ahead of use on a thread of its own.
//
// The service's heap (malloc's main arena, grown with brk) comes in 2 MiB transparent
// huge pages (app/main.cpp), and the first touch of each makes the kernel zero it: 4–6
// ms on this project's VMs, where the host also backs the page then. That touch came
// from whichever thread allocated first, most often the I/O thread, and every message
// behind it waited: about one such stall a second in a steady stream at 10,000
// messages/s (docs/BENCHMARKS.md, "The open loop side by side"). With glibc's top_pad
// the arena asks the kernel for more than it needs whenever it grows, and this step
// populates that tail (madvise MADV_POPULATE_WRITE, which faults pages in as a write
// would and leaves their contents as they are) before an allocation gets there.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nudge::app {

class heap_prefault {
public:
  /// Starts from the arena's current extent: what malloc already handed out is
  /// touched, the rest of the break gets populated by the first steps.
  heap_prefault();

  /// Populates, in slices of `slice` bytes (each one madvise call, so that a brk that
  /// grows or trims the heap meanwhile waits for one slice at most), the part of the
  /// heap between what earlier steps populated and the current break, at most
  /// `max_bytes` of it. Returns the bytes populated. Nothing when the kernel lacks
  /// MADV_POPULATE_WRITE (before Linux 5.14: then never again) or under a sanitizer,
  /// whose allocator does not use the break.
  std::size_t step(std::size_t max_bytes, std::size_t slice = std::size_t{2} << 20);

  /// The address up to which the heap has been populated (the break, once caught up).
  std::uintptr_t populated_to() const noexcept { return done_; }
  bool supported() const noexcept { return supported_; }

private:
  std::uintptr_t done_ = 0;
  bool supported_ = true;
};

}  // namespace nudge::app
