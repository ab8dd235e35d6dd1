#include "runtime/transport/send_budget.h"

#include <algorithm>

namespace mrtrain::runtime {

SendBudget::SendBudget(size_t budget_bytes, std::chrono::milliseconds timeout)
    : budget_bytes_(budget_bytes), timeout_(timeout) {}

Status SendBudget::Acquire(size_t bytes, bool may_wait, const std::string& peer) {
  std::unique_lock<std::mutex> lock(mu_);
  auto fits = [&] { return closed_ || reserved_ == 0 || reserved_ + bytes <= budget_bytes_; };
  if (may_wait && !drained_.wait_for(lock, timeout_, fits)) {
    return Status(StatusCode::kDeadlineExceeded,
                  "send to " + peer + " timed out after " + std::to_string(timeout_.count()) +
                      " ms: " + std::to_string(reserved_) +
                      " bytes are still queued (the peer reads too slowly)");
  }
  if (closed_) return Status(StatusCode::kUnavailable, "connection to " + peer + " is closed");
  reserved_ += bytes;
  return Status::Ok();
}

void SendBudget::Release(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reserved_ -= std::min(bytes, reserved_);
  }
  drained_.notify_all();
}

void SendBudget::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    reserved_ = 0;
  }
  drained_.notify_all();
}

size_t SendBudget::reserved() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reserved_;
}

}  // namespace mrtrain::runtime
