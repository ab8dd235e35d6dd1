#pragma once

#include <cstddef>

namespace mrtrain::testing {

// Records the largest single operator-new request made while a tracker is alive, so a test can
// show that a decoder rejected a hostile length without allocating for it. Linking this library
// replaces the global operator new/delete of the test binary (with plain malloc/free).
// Not reentrant: one tracker at a time.
class AllocationTracker {
 public:
  AllocationTracker();
  ~AllocationTracker();
  AllocationTracker(const AllocationTracker&) = delete;
  AllocationTracker& operator=(const AllocationTracker&) = delete;

  size_t largest_request() const;
};

}  // namespace mrtrain::testing
