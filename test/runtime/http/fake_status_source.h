#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include "runtime/http/http_handler.h"

namespace mrtrain::runtime {

// Fixed answers: a status with a worker, job 7's history, a metric; `delay` makes each call
// take that long (a master whose lock is busy).
class FakeStatusSource : public StatusSource {
 public:
  std::string StatusJson() const override {
    Wait();
    return R"({"workers":[{"id":1,"name":"w0","slots":2}],"jobs":[]})";
  }
  std::optional<std::string> HistoryJson(uint64_t job_id) const override {
    Wait();
    if (job_id != 7) return std::nullopt;
    return std::string("{\"job\":7}");
  }
  std::string MetricsText() const override {
    Wait();
    return "# HELP up Up.\n# TYPE up gauge\nup 1\n";
  }
  std::atomic<int> delay_ms{0};

 private:
  void Wait() const { std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load())); }
};

}  // namespace mrtrain::runtime
