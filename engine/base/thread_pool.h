#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mrtrain {

// A fixed set of threads that runs index-parallel loops. ParallelFor blocks until every index
// has run, so callers see all effects on return. Which thread runs which index is not
// deterministic; callers that need determinism write results to per-index slots.
// Thread-safe for one ParallelFor at a time (calls are serialised).
class ThreadPool {
 public:
  // num_threads <= 1 runs every loop on the calling thread.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(i) for every i in [0, n). fn must not throw.
  void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn);

 private:
  void WorkerLoop();
  void RunIndices();

  // Constant after construction.
  const int num_threads_;
  std::vector<std::thread> threads_;

  std::mutex call_mu_;  // serialises ParallelFor calls

  // Guarded by mu_.
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t next_ = 0;
  int64_t end_ = 0;
  int64_t pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace mrtrain
