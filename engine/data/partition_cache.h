#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::data {

// Parses each partition of a dataset on first use and hands it out as a shared_ptr. Unbounded
// (data.<set>.cache: memory), it keeps every partition for later epochs ("parse once"). Bounded
// (cache: disk), it keeps at most `budget_bytes` (PartitionData::MemoryBytes) of partitions no
// caller holds, dropping the least recently used first, and loads a dropped partition again
// when it is next asked for (Dataset::BorrowPartition: shards are served in place from their
// mapped files, so a re-read copies nothing): it gives the same rows in the same order every
// time, so results do not change. Partitions callers hold are never dropped while held; so
// what is resident is at most the budget plus the partitions in use, at every moment: the
// caller that lets go of a partition last makes room at once (an idle partition past the
// budget goes then, its memory or mapping with it). Finding what to drop costs O(log P). A
// bounded cache reads ahead on its own I/O thread (Prefetch), within the budget. Thread-safe;
// concurrent Gets of one partition load it once. The dataset must outlive the cache; a
// partition may outlive both.
class PartitionCache {
 public:
  static constexpr int64_t kUnbounded = -1;

  explicit PartitionCache(const Dataset* dataset, int64_t budget_bytes = kUnbounded);
  ~PartitionCache();  // waits for a read ahead under way
  PartitionCache(const PartitionCache&) = delete;
  PartitionCache& operator=(const PartitionCache&) = delete;

  // The partition, or the error LoadPartition gave (errors are not cached).
  Result<std::shared_ptr<const PartitionData>> Get(int64_t p);

  // Bounded caches only: loads partition p on the I/O thread unless it is resident or in use,
  // if it fits in the budget beside what callers hold (its size is known from an earlier load).
  // A failed read ahead is dropped: the Get that needs the partition reports it.
  void Prefetch(int64_t p);
  // Prefetches the partition a loop over this cache's share needs soon after p: among the few
  // next ones (wrapping) that Get has been asked for, the first that is neither resident, nor
  // in use, nor being read.
  void PrefetchAfter(int64_t p);

  const Dataset& dataset() const { return *dataset_; }
  int64_t budget_bytes() const { return budget_; }
  // Bytes of the partitions the cache holds now, in use or not.
  int64_t ResidentBytes() const;
  // LoadPartition calls so far (re-reads of dropped partitions included).
  int64_t loads() const;

 private:
  struct Slot {
    std::shared_ptr<const PartitionData> part;  // resident
    int64_t users = 0;                          // handles Get gave out that are still held
    int64_t bytes = -1;                         // of its last load; -1: never loaded
    uint64_t last_use = 0;
    bool requested = false;  // asked for by Get: part of the share PrefetchAfter walks
    bool loading = false;    // a Get or read ahead is loading it now
    bool ahead = false;      // read ahead, no Get since
  };
  // Resident partitions no caller holds, in the order they go: those read ahead and not yet
  // used last (they are the ones needed next), else least recently used first.
  using IdleKey = std::tuple<bool, uint64_t, int64_t>;  // ahead, last_use, partition
  // What a handle's deleter reaches: the cache while it lives. A handle let go after the cache
  // is gone only frees its partition.
  struct Owner {
    std::mutex mu;
    PartitionCache* cache = nullptr;  // guarded by mu
  };
  using Dropped = std::vector<std::shared_ptr<const PartitionData>>;
  // How many partitions of the share after the one a task starts on PrefetchAfter considers:
  // with two or three task slots the next ones are already being computed or read.
  static constexpr int64_t kReadAheadWindow = 4;
  enum class Why { kGet, kPrefetch };

  bool bounded() const { return budget_ != kUnbounded; }
  IdleKey KeyOf(int64_t p) const { return {slots_[p].ahead, slots_[p].last_use, p}; }
  // A handle on resident partition p for a caller: in use until the handle's last copy goes.
  // REQUIRES: mu_.
  std::shared_ptr<const PartitionData> HandOutLocked(int64_t p);
  // A handle on p was let go: p turns idle when it was the last, and what passes the budget
  // goes now.
  void Release(int64_t p);
  // Drops idle partitions in IdleKey order until idle bytes + `incoming` fit the budget, into
  // *dropped (freed by the caller after unlocking: unmapping or freeing them takes time); false
  // when they cannot (the rest is in use, or read ahead for a read ahead). REQUIRES: mu_.
  bool EvictLocked(int64_t incoming, Why why, Dropped* dropped);
  // Loads p under its partition lock, unless resident. kGet: a handle on it. kPrefetch: nullptr,
  // p left idle; nothing loaded when p would not fit.
  Result<std::shared_ptr<const PartitionData>> Load(int64_t p, Why why);
  void IoLoop();

  const Dataset* dataset_;
  const int64_t budget_;
  std::vector<std::unique_ptr<std::mutex>> part_mu_;  // one per partition: load once
  mutable std::mutex mu_;
  std::vector<Slot> slots_;        // guarded by mu_
  std::set<IdleKey> idle_;         // guarded by mu_
  int64_t idle_bytes_ = 0;         // guarded by mu_; of the partitions in idle_
  int64_t resident_bytes_ = 0;     // guarded by mu_; idle and in use
  uint64_t clock_ = 0;             // guarded by mu_; orders uses for LRU
  int64_t loads_ = 0;              // guarded by mu_
  std::deque<int64_t> prefetch_;   // guarded by mu_; partitions the I/O thread will read
  bool stopping_ = false;          // guarded by mu_
  std::condition_variable io_cv_;  // with mu_: prefetch_ or stopping_ changed
  std::thread io_;                 // bounded caches only
  std::shared_ptr<Owner> owner_ = std::make_shared<Owner>();
};

}  // namespace mrtrain::data
