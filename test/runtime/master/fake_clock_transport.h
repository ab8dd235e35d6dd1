#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "runtime/transport/transport.h"

namespace mrtrain::runtime::testing {

// A Transport whose timers run on a clock the test moves (Advance), so behaviour that depends
// on time (step timeouts) is tested without waiting for it. Everything else goes to the wrapped
// transport; due timers are Post()ed to it, so they run on its thread as real timers would.
// Thread-safe.
class FakeClockTransport : public Transport {
 public:
  explicit FakeClockTransport(std::unique_ptr<Transport> inner) : inner_(std::move(inner)) {}

  // Moves the clock forward and runs every timer that is then due, in deadline order.
  void Advance(std::chrono::milliseconds by) {
    std::multimap<std::chrono::milliseconds, TimerHandle> due;
    {
      std::lock_guard<std::mutex> lock(mu_);
      now_ += by;
      auto end = timers_.upper_bound(now_);
      due.insert(timers_.begin(), end);
      timers_.erase(timers_.begin(), end);
    }
    for (auto& [when, timer] : due) {
      inner_->Post([timer = std::move(timer)] { timer.Fire(); });
    }
  }
  // Timers waiting for the clock (cancelled ones included until they come due).
  size_t pending_timers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return timers_.size();
  }

  Result<std::string> Listen(const std::string& address, ConnectionHandler handler) override {
    return inner_->Listen(address, std::move(handler));
  }
  void Connect(const std::string& address, ConnectionHandler handler,
               ConnectCallback done) override {
    inner_->Connect(address, std::move(handler), std::move(done));
  }
  void Post(std::function<void()> fn) override { inner_->Post(std::move(fn)); }
  TimerHandle RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) override {
    TimerHandle handle(std::move(fn));
    std::lock_guard<std::mutex> lock(mu_);
    timers_.emplace(now_ + delay, handle);
    return handle;
  }
  bool InTransportThread() const override { return inner_->InTransportThread(); }
  void Stop() override { inner_->Stop(); }

 private:
  const std::unique_ptr<Transport> inner_;
  mutable std::mutex mu_;
  std::chrono::milliseconds now_{0};                              // guarded by mu_
  std::multimap<std::chrono::milliseconds, TimerHandle> timers_;  // guarded by mu_
};

}  // namespace mrtrain::runtime::testing
