#include "test/runtime/protocol/allocation_tracker.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace mrtrain::testing {
namespace {

std::atomic<bool> g_tracking{false};
std::atomic<size_t> g_largest{0};

void* Allocate(size_t n) {
  if (g_tracking.load(std::memory_order_relaxed)) {
    size_t seen = g_largest.load(std::memory_order_relaxed);
    while (n > seen && !g_largest.compare_exchange_weak(seen, n)) {
    }
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

AllocationTracker::AllocationTracker() {
  g_largest = 0;
  g_tracking = true;
}

AllocationTracker::~AllocationTracker() { g_tracking = false; }

size_t AllocationTracker::largest_request() const { return g_largest.load(); }

}  // namespace mrtrain::testing

void* operator new(size_t n) { return mrtrain::testing::Allocate(n); }
void* operator new[](size_t n) { return mrtrain::testing::Allocate(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  try {
    return mrtrain::testing::Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  try {
    return mrtrain::testing::Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
