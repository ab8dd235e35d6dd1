#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>

#include "engine/base/status.h"

namespace mrtrain::runtime {

// Counts bytes in flight and makes senders wait while they are over budget: the backpressure
// of Connection::Send (transport.h; both transports use it per connection) and of a worker's
// unacknowledged shuffle pushes. Thread-safe.
class SendBudget {
 public:
  SendBudget(size_t budget_bytes, std::chrono::milliseconds timeout);

  // Reserves `bytes`. If others are reserved and the total would pass the budget, waits (only
  // when `may_wait`) until enough are released, Close() is called or the timeout ends; when it
  // may not wait, reserves anyway. `peer` names the connection in errors.
  // Errors: kUnavailable after Close(); kDeadlineExceeded when the wait times out.
  Status Acquire(size_t bytes, bool may_wait, const std::string& peer);

  // Returns bytes reserved by Acquire (written or dropped) and wakes waiters.
  void Release(size_t bytes);

  // Fails waiting and later Acquire() calls with kUnavailable; forgets all reservations.
  void Close();

  size_t reserved() const;

 private:
  // Constant after construction.
  const size_t budget_bytes_;
  const std::chrono::milliseconds timeout_;

  mutable std::mutex mu_;
  std::condition_variable drained_;
  size_t reserved_ = 0;  // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

}  // namespace mrtrain::runtime
