#pragma once

namespace mrtrain {

// Asks glibc to keep freed memory in the process instead of returning it to the kernel.
// Every round allocates and frees map outputs of the model's size; without this, each large
// allocation is a fresh mmap whose pages fault in again (measured: about a fifth of a round's
// time for the Fashion-MNIST MLP). Call once at the start of main, before threads start.
void KeepFreedMemoryInProcess();

// Returns the free memory of the heap to the kernel (malloc_trim). A long-lived process calls it
// when a job's data is gone: with the thresholds above nothing else ever gives it back, and the
// holes a job leaves are not all reused by the next job's different sizes (a worker running 14
// identical jobs grew from 191 to 298 MB of RSS with under 20 MB in use). Takes milliseconds per
// hundred MB of free heap; call it off the transport thread.
void ReturnFreedMemoryToSystem();

}  // namespace mrtrain
