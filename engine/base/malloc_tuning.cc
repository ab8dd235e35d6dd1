#include "engine/base/malloc_tuning.h"

#include <malloc.h>

namespace mrtrain {

void KeepFreedMemoryInProcess() {
  constexpr int kLarge = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kLarge);  // serve large blocks from the heap, reusable
  mallopt(M_TRIM_THRESHOLD, kLarge);  // do not hand the heap's top back to the kernel
  // One arena for every thread: glibc gives other threads arenas whose heaps hold at most
  // 64 MiB, so a larger block allocated off the main thread (an encoded run, a received frame,
  // a decoded run) would be a fresh mmap whatever the thresholds say, unmapped on free and
  // faulted in again page by page the next time. Our threads allocate few, large blocks, so
  // sharing one arena's lock costs little.
  mallopt(M_ARENA_MAX, 1);
}

void ReturnFreedMemoryToSystem() { malloc_trim(0); }

}  // namespace mrtrain
