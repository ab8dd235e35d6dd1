#include "engine/base/malloc_tuning.h"

#include <malloc.h>

// Under a sanitizer its own allocator serves malloc and free: glibc's arenas stay unused (and
// may be uninitialised: malloc_trim then reads through a null top chunk), so neither the
// tuning nor the trim applies there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MRTRAIN_FOREIGN_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define MRTRAIN_FOREIGN_ALLOCATOR 1
#endif
#endif

namespace mrtrain {

void KeepFreedMemoryInProcess() {
#ifndef MRTRAIN_FOREIGN_ALLOCATOR
  constexpr int kLarge = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kLarge);  // serve large blocks from the heap, reusable
  mallopt(M_TRIM_THRESHOLD, kLarge);  // do not hand the heap's top back to the kernel
  // One arena for every thread: glibc gives other threads arenas whose heaps hold at most
  // 64 MiB, so a larger block allocated off the main thread (an encoded run, a received frame,
  // a decoded run) would be a fresh mmap whatever the thresholds say, unmapped on free and
  // faulted in again page by page the next time. Our threads allocate few, large blocks, so
  // sharing one arena's lock costs little.
  mallopt(M_ARENA_MAX, 1);
#endif
}

void ReturnFreedMemoryToSystem() {
#ifndef MRTRAIN_FOREIGN_ALLOCATOR
  malloc_trim(0);
#endif
}

}  // namespace mrtrain
