#include "engine/data/stream_cache.h"

namespace mrtrain::data {

Result<std::unique_ptr<ByteSource>> StreamCache::Open(const std::string& path, int64_t offset) {
  std::unique_ptr<ByteSource> source;
  int64_t at = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto best = parked_.end();
    for (auto it = parked_.begin(); it != parked_.end(); ++it) {
      if (it->source->path() == path && it->offset <= offset &&
          (best == parked_.end() || it->offset > best->offset)) {
        best = it;
      }
    }
    if (best != parked_.end()) {
      at = best->offset;
      source = std::move(best->source);
      parked_.erase(best);
    }
  }
  if (source == nullptr) return ByteSource::Open(path, offset);
  MRTRAIN_RETURN_IF_ERROR(source->Skip(offset - at));
  return source;
}

void StreamCache::Park(int64_t offset, std::unique_ptr<ByteSource> source) {
  if (!IsGzipPath(source->path()) || capacity_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (parked_.size() == capacity_) parked_.pop_front();
  parked_.push_back({offset, std::move(source)});
}

}  // namespace mrtrain::data
