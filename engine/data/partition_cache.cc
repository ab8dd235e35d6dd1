#include "engine/data/partition_cache.h"

#include <algorithm>
#include <chrono>

#include "engine/base/log.h"

namespace mrtrain::data {

PartitionCache::PartitionCache(const Dataset* dataset, int64_t budget_bytes)
    : dataset_(dataset),
      budget_(budget_bytes < 0 ? kUnbounded : budget_bytes),
      slots_(dataset->num_partitions()) {
  part_mu_.reserve(dataset->num_partitions());
  for (int64_t p = 0; p < dataset->num_partitions(); ++p) {
    part_mu_.push_back(std::make_unique<std::mutex>());
  }
  owner_->cache = this;
  if (bounded()) io_ = std::thread([this] { IoLoop(); });
}

PartitionCache::~PartitionCache() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  io_cv_.notify_all();
  if (io_.joinable()) io_.join();
  std::lock_guard<std::mutex> lock(owner_->mu);  // waits for a Release under way
  owner_->cache = nullptr;
}

Result<std::shared_ptr<const PartitionData>> PartitionCache::Get(int64_t p) {
  if (p < 0 || p >= dataset_->num_partitions()) {
    return InvalidArgumentError("partition " + std::to_string(p) + " is out of range [0, " +
                                std::to_string(dataset_->num_partitions()) + ")");
  }
  return Load(p, Why::kGet);
}

void PartitionCache::Prefetch(int64_t p) {
  if (!bounded() || p < 0 || p >= dataset_->num_partitions()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (slots_[p].part != nullptr) return;
    if (std::find(prefetch_.begin(), prefetch_.end(), p) != prefetch_.end()) return;
    prefetch_.push_back(p);
  }
  io_cv_.notify_one();
}

void PartitionCache::PrefetchAfter(int64_t p) {
  if (!bounded()) return;
  const int64_t n = dataset_->num_partitions();
  int64_t next = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Other task slots are already on the partitions right after p, or about to be, and a
    // read ahead may be under way: the first partition of the share within the window that is
    // none of those is the one to read.
    int64_t looked = 0;
    for (int64_t i = 1; i < n && next < 0 && looked < kReadAheadWindow; ++i) {
      const int64_t q = (p + i) % n;
      const Slot& s = slots_[q];
      if (!s.requested) continue;
      ++looked;
      const bool there = s.part != nullptr || s.loading ||
                         std::find(prefetch_.begin(), prefetch_.end(), q) != prefetch_.end();
      if (!there) next = q;
    }
  }
  if (next >= 0) Prefetch(next);
}

int64_t PartitionCache::ResidentBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resident_bytes_;
}

int64_t PartitionCache::loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loads_;
}

std::shared_ptr<const PartitionData> PartitionCache::HandOutLocked(int64_t p) {
  Slot& s = slots_[p];
  // Idle unless just loaded; out of idle_ before its key changes.
  if (s.users++ == 0 && idle_.erase(KeyOf(p)) > 0) idle_bytes_ -= s.bytes;
  s.ahead = false;
  s.last_use = ++clock_;
  // The handle shares the partition's lifetime, so the data outlives the cache if need be; its
  // deleter tells the cache the caller let go. Never destroyed under mu_ (Release takes it).
  return std::shared_ptr<const PartitionData>(
      s.part.get(), [owner = owner_, p, part = s.part](const PartitionData*) mutable {
        {
          std::lock_guard<std::mutex> lock(owner->mu);
          if (owner->cache != nullptr) owner->cache->Release(p);
        }
        part.reset();
      });
}

void PartitionCache::Release(int64_t p) {
  Dropped dropped;
  std::lock_guard<std::mutex> lock(mu_);
  Slot& s = slots_[p];
  if (--s.users > 0) return;
  idle_.insert(KeyOf(p));
  idle_bytes_ += s.bytes;
  EvictLocked(0, Why::kGet, &dropped);
  // `dropped` is freed after mu_ is released: declared first, destroyed last.
}

bool PartitionCache::EvictLocked(int64_t incoming, Why why, Dropped* dropped) {
  if (!bounded()) return true;
  while (idle_bytes_ + incoming > budget_) {
    if (idle_.empty()) return false;
    const auto [ahead, last_use, p] = *idle_.begin();
    if (why == Why::kPrefetch && ahead) return false;  // never for another read ahead
    idle_.erase(idle_.begin());
    Slot& s = slots_[p];
    idle_bytes_ -= s.bytes;
    resident_bytes_ -= s.bytes;
    dropped->push_back(std::move(s.part));
  }
  return true;
}

Result<std::shared_ptr<const PartitionData>> PartitionCache::Load(int64_t p, Why why) {
  // The per-partition lock makes a second caller wait for the first load instead of
  // repeating it, while other partitions load in parallel; mu_ only guards the slots.
  std::lock_guard<std::mutex> load_lock(*part_mu_[p]);
  Dropped dropped;  // freed after mu_ is released
  bool first_load = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& s = slots_[p];
    if (why == Why::kGet) s.requested = true;
    if (s.part != nullptr) {
      if (why == Why::kGet) return HandOutLocked(p);
      return std::shared_ptr<const PartitionData>();
    }
    first_load = s.bytes < 0;
    // Make room first. A Get's partition is in use, beside the budget; a read ahead's is idle
    // and must fit in it.
    const bool fits =
        EvictLocked(why == Why::kGet ? 0 : std::max<int64_t>(s.bytes, 0), why, &dropped);
    if (why == Why::kPrefetch && !fits) return std::shared_ptr<const PartitionData>();
    ++loads_;
    s.loading = true;
  }
  dropped.clear();
  const auto start = std::chrono::steady_clock::now();
  Result<PartitionData> loaded =
      bounded() ? dataset_->BorrowPartition(p) : dataset_->LoadPartition(p);
  if (!loaded.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    slots_[p].loading = false;
    return loaded.status();
  }
  PartitionData data = std::move(loaded).value();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto log = Logger("data");
  if (log->should_log(spdlog::level::debug)) {
    log->debug("{} partition {} ({}): {} rows, {} bytes in {:.3f}s",
               first_load         ? "loaded"
               : why == Why::kGet ? "re-read"
                                  : "read ahead",
               p, dataset_->DescribePartition(p), data.num_rows, data.MemoryBytes(), seconds);
  }
  if (first_load && data.skipped_records > 0) {  // a re-read skips the same records again
    log->warn("partition {} ({}): skipped {} bad records, first: {}", p,
              dataset_->DescribePartition(p), data.skipped_records, data.skipped_samples[0]);
  }
  const int64_t bytes = data.MemoryBytes();
  auto part = std::make_shared<const PartitionData>(std::move(data));
  std::shared_ptr<const PartitionData> handle;
  std::lock_guard<std::mutex> lock(mu_);
  Slot& s = slots_[p];
  s.loading = false;
  s.part = std::move(part);
  s.bytes = bytes;
  s.last_use = ++clock_;
  resident_bytes_ += bytes;
  if (why == Why::kPrefetch) {
    s.ahead = true;
    idle_.insert(KeyOf(p));
    idle_bytes_ += bytes;
  } else {
    handle = HandOutLocked(p);
  }
  // The first load of a partition learns its size only now; a read ahead that does not fit
  // after all is dropped again.
  EvictLocked(0, why, &dropped);
  return handle;
}

void PartitionCache::IoLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    io_cv_.wait(lock, [this] { return stopping_ || !prefetch_.empty(); });
    if (stopping_) return;
    const int64_t p = prefetch_.front();
    prefetch_.pop_front();
    lock.unlock();
    auto loaded = Load(p, Why::kPrefetch);
    if (!loaded.ok()) {
      Logger("data")->debug("read ahead of partition {} failed: {}", p, loaded.status().ToString());
    }
    lock.lock();
  }
}

}  // namespace mrtrain::data
