#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/base/status.h"
#include "engine/data/partition_data.h"
#include "engine/data/shard_format.h"

namespace mrtrain::data {

// Checks a shard's preamble, header CRC and layout against the file's length and returns its
// header. `bytes` is the whole file; `file` names it in errors. Fails with kCorruption naming
// the file and the byte offset of what is wrong (a file cut short names where it ends and how
// long its header says it is), kFailedPrecondition for a shard of another format version,
// naming both versions. Reads nothing past the header: the body is checked by DecodeShardBody.
Result<ShardHeader> ReadShardHeader(std::string_view bytes, const std::string& file);

// Checks each section's CRC32C and the CSR structure (offsets from 0 to nnz, never decreasing;
// columns increasing within a row and below num_cols) where the bytes lie. kCorruption names
// the file, the section and its byte range, or the offset of the bad value.
// REQUIRES: header came from ReadShardHeader(bytes, file).
Status CheckShardBody(std::string_view bytes, const ShardHeader& header, const std::string& file);

// CheckShardBody, then the arrays copied into a partition.
Result<PartitionData> DecodeShardBody(std::string_view bytes, const ShardHeader& header,
                                      const std::string& file);

// What tells one version of a file from another without reading it: a file replaced (rename)
// has another inode; one written in place another size, mtime or ctime (ctime no program can set
// back). Only a change within one tick of the file system's clock that keeps the size slips by.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const FileIdentity& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns &&
           ctime_ns == o.ctime_ns;
  }
  bool operator!=(const FileIdentity& o) const { return !(*this == o); }
};

// A shard file mapped read-only into memory. Movable, not copyable; unmaps when destroyed.
// Not thread-safe to share while moving; concurrent reads of a const one are fine.
class MappedShard {
 public:
  // Maps `path` and reads its header (ReadShardHeader); kIOError when it cannot be opened.
  static Result<MappedShard> Open(const std::string& path);

  // The rows served in place: a partition whose arrays (PartitionData::borrowed) point into the
  // mapping, which the partition keeps until its last copy goes (then munmap lets the pages
  // go). Copies nothing but the header's row sources. REQUIRES: CheckBody() passed for this
  // mapping or one of the same FileIdentity.
  static PartitionData Borrow(std::shared_ptr<const MappedShard> shard);

  MappedShard(MappedShard&& other) noexcept;
  MappedShard& operator=(MappedShard&& other) noexcept;
  MappedShard(const MappedShard&) = delete;
  MappedShard& operator=(const MappedShard&) = delete;
  ~MappedShard();

  const ShardHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  // The file's identity when it was mapped (fstat of the descriptor mapped).
  const FileIdentity& identity() const { return identity_; }

  // The body checked where it lies (CheckShardBody), copying nothing.
  Status CheckBody() const { return CheckShardBody(bytes(), header_, path_); }

  // Reads the file into the page cache and maps every page now, on the calling thread, so the
  // rows' readers take no page faults: a cache's read ahead does it on its I/O thread. Best
  // effort: a page it could not read faults when touched, as it would have.
  void Populate() const;

  // The rows, through DecodeShardBody.
  Result<PartitionData> Decode() const { return DecodeShardBody(bytes(), header_, path_); }

 private:
  MappedShard(std::string path, void* map, size_t size)
      : path_(std::move(path)), map_(map), size_(size) {}
  std::string_view bytes() const { return {static_cast<const char*>(map_), size_}; }

  std::string path_;
  void* map_ = nullptr;  // nullptr for an empty file, which mmap refuses
  size_t size_ = 0;
  FileIdentity identity_;
  ShardHeader header_;
};

}  // namespace mrtrain::data
