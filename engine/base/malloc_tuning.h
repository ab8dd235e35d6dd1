#pragma once

namespace mrtrain {

// Asks glibc to keep freed memory in the process instead of returning it to the kernel.
// Every round allocates and frees map outputs of the model's size; without this, each large
// allocation is a fresh mmap whose pages fault in again (measured: about a fifth of a round's
// time for the Fashion-MNIST MLP). Call once at the start of main, before threads start.
void KeepFreedMemoryInProcess();

}  // namespace mrtrain
