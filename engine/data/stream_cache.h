#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "engine/base/status.h"
#include "engine/data/byte_source.h"

namespace mrtrain::data {

// Open gzip streams parked where a partition's read stopped. gzip has no random access, so
// partition k of P starts by decompressing k/P of its file; loading all partitions that way
// costs (P + 1) / 2 decompressions. Resuming from the stream the previous partition left
// behind makes loading in increasing order (a loop over partitions, a worker's share) cost
// about one decompression per concurrent loader instead. Thread-safe; a parked stream is
// handed to one caller at a time.
class StreamCache {
 public:
  // Keeps at most `capacity` streams (each holds zlib's buffers, about half a megabyte).
  explicit StreamCache(size_t capacity) : capacity_(capacity) {}

  // A source at byte `offset` of `path`: the parked stream of that file furthest along but not
  // past `offset`, moved forward, or else a new one. Fails like ByteSource::Open.
  Result<std::unique_ptr<ByteSource>> Open(const std::string& path, int64_t offset);

  // Parks `source`, which stands at byte `offset` of its file, for a later Open. Plain files
  // seek cheaply and are not parked. The oldest stream goes when the cache is full.
  void Park(int64_t offset, std::unique_ptr<ByteSource> source);

 private:
  struct Parked {
    int64_t offset;
    std::unique_ptr<ByteSource> source;
  };

  const size_t capacity_;
  std::mutex mu_;
  std::deque<Parked> parked_;  // guarded by mu_; oldest first
};

}  // namespace mrtrain::data
