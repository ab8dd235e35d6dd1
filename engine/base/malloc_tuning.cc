#include "engine/base/malloc_tuning.h"

#include <malloc.h>

namespace mrtrain {

void KeepFreedMemoryInProcess() {
  constexpr int kLarge = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kLarge);  // serve large blocks from the heap, reusable
  mallopt(M_TRIM_THRESHOLD, kLarge);  // do not hand the heap's top back to the kernel
}

}  // namespace mrtrain
