#include "engine/data/shard_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "engine/base/crc32c.h"

namespace mrtrain::data {
namespace {

constexpr const char* kSectionNames[2][4] = {{"labels", "dense", "", ""},
                                             {"labels", "row_offsets", "cols", "values"}};

const char* SectionName(const ShardHeader& h, size_t i) {
  return kSectionNames[h.layout == ShardLayout::kCsr ? 1 : 0][i];
}

std::string Range(int64_t begin, int64_t end) {
  return "bytes [" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

Status Corrupt(const std::string& file, const std::string& why) {
  return CorruptionError(file + ": corrupt shard: " + why);
}

template <typename T>
T Load(std::string_view bytes, int64_t at) {
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof(T));
  return v;
}

// Every section's length follows from the shape; a shape the file cannot hold fails before any
// product is formed, so none overflows.
Status CheckShape(const ShardHeader& h, int64_t file_bytes, const std::string& file) {
  const int64_t max_items = file_bytes / 4;
  if (h.num_rows > max_items || h.nnz > max_items ||
      (h.layout == ShardLayout::kDense && h.num_rows > 0 && h.num_cols > max_items / h.num_rows)) {
    return Corrupt(file, "its header claims " + std::to_string(h.num_rows) + " rows of " +
                             std::to_string(h.num_cols) + " columns (" + std::to_string(h.nnz) +
                             " values), more than its " + std::to_string(file_bytes) +
                             " bytes hold");
  }
  if (h.layout == ShardLayout::kCsr && h.num_cols > (int64_t{1} << 32)) {
    return Corrupt(file, "num_cols " + std::to_string(h.num_cols) + " does not fit 32-bit columns");
  }
  int64_t row = -1;
  for (const RowSources::Run& run : h.sources.runs) {
    if (run.first_row <= row || run.first_row >= h.num_rows) {
      return Corrupt(file, "row run starting at row " + std::to_string(run.first_row) +
                               " is out of order or past the last row");
    }
    row = run.first_row;
  }
  return Status::Ok();
}

Status CheckSections(const ShardHeader& h, int64_t body_at, int64_t file_bytes,
                     const std::string& file) {
  const std::vector<int64_t> expected = SectionBytes(h);
  if (h.sections.size() != expected.size()) {
    return Corrupt(file, "the header lists " + std::to_string(h.sections.size()) +
                             " sections; its layout has " + std::to_string(expected.size()));
  }
  int64_t at = body_at;
  for (size_t i = 0; i < expected.size(); ++i) {
    const ShardSection& s = h.sections[i];
    if (s.offset != at || s.bytes != expected[i]) {
      // Listed values are unchecked: print them, don't add them.
      return Corrupt(file, std::string("section ") + SectionName(h, i) + " is listed at offset " +
                               std::to_string(s.offset) + ", " + std::to_string(s.bytes) +
                               " bytes; its shape puts it at " + Range(at, at + expected[i]));
    }
    at = AlignShardOffset(at + s.bytes);
  }
  const ShardSection& last = h.sections.back();
  const int64_t end = last.offset + last.bytes;
  if (file_bytes < end) {
    return Corrupt(file, "truncated at byte " + std::to_string(file_bytes) +
                             ": its header says the file is " + std::to_string(end) +
                             " bytes long (section " + SectionName(h, h.sections.size() - 1) +
                             " ends there)");
  }
  if (file_bytes > end) {
    return Corrupt(file, std::to_string(file_bytes - end) + " unexpected bytes at byte " +
                             std::to_string(end) + ", after the last section");
  }
  return Status::Ok();
}

template <typename T>
std::vector<T> Copy(std::string_view bytes, const ShardSection& s) {
  std::vector<T> out(static_cast<size_t>(s.bytes) / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data() + s.offset, s.bytes);
  return out;
}

// Reads the CSR arrays where they lie, by memcpy: `bytes` need not be aligned (a mapping is).
Status CheckCsr(std::string_view bytes, const ShardHeader& h, const std::string& file) {
  const ShardSection& offsets = h.sections[1];
  const int64_t cols_at = h.sections[2].offset;
  auto row_offset = [&](int64_t r) { return Load<int64_t>(bytes, offsets.offset + 8 * r); };
  auto col = [&](int64_t k) { return Load<uint32_t>(bytes, cols_at + 4 * k); };
  if (row_offset(0) != 0 || row_offset(h.num_rows) != h.nnz) {
    return Corrupt(file, "row_offsets at " + Range(offsets.offset, offsets.offset + offsets.bytes) +
                             " do not run from 0 to " + std::to_string(h.nnz));
  }
  int64_t begin = 0;
  for (int64_t r = 0; r < h.num_rows; ++r) {
    const int64_t end = row_offset(r + 1);
    if (end < begin || end > h.nnz) {
      return Corrupt(file, "row offset at byte " + std::to_string(offsets.offset + 8 * (r + 1)) +
                               " decreases or passes nnz");
    }
    uint32_t previous = 0;
    for (int64_t k = begin; k < end; ++k) {
      const uint32_t c = col(k);
      if (c >= h.num_cols || (k > begin && c <= previous)) {
        return Corrupt(file, "column " + std::to_string(c) + " at byte " +
                                 std::to_string(cols_at + 4 * k) +
                                 " is not increasing within its row or not below num_cols " +
                                 std::to_string(h.num_cols));
      }
      previous = c;
    }
    begin = end;
  }
  return Status::Ok();
}

template <typename T>
const T* SectionAt(std::string_view bytes, const ShardSection& s) {
  return reinterpret_cast<const T*>(bytes.data() + s.offset);
}

// A partition with the header's shape and row sources and no arrays yet.
PartitionData ShardPartitionShell(const ShardHeader& h) {
  PartitionData d;
  d.num_rows = h.num_rows;
  d.num_cols = h.num_cols;
  d.is_sparse = h.layout == ShardLayout::kCsr;
  d.skipped_records = h.skipped_records;
  d.skipped_samples = h.skipped_samples;
  d.sources = h.sources;
  return d;
}

}  // namespace

Result<ShardHeader> ReadShardHeader(std::string_view bytes, const std::string& file) {
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (size < kShardPreambleBytes) {
    return Corrupt(file, "truncated at byte " + std::to_string(size) + ": a shard starts with a " +
                             std::to_string(kShardPreambleBytes) + "-byte preamble");
  }
  if (std::memcmp(bytes.data(), kShardMagic, sizeof(kShardMagic)) != 0) {
    return CorruptionError(file + ": not a shard file: bad magic at byte 0 (expected \"" +
                           std::string(kShardMagic, sizeof(kShardMagic)) + "\")");
  }
  const uint32_t version = Load<uint32_t>(bytes, 8);
  if (version != kShardVersion) {
    return FailedPreconditionError(file + ": shard format version " + std::to_string(version) +
                                   "; this mrtrain reads version " + std::to_string(kShardVersion) +
                                   ": convert the source again with this mrtrain");
  }
  const int64_t header_len = Load<uint32_t>(bytes, 12);
  if (header_len > kMaxShardHeaderBytes) {
    return Corrupt(file, "header length " + std::to_string(header_len) + " at byte 12 is over " +
                             std::to_string(kMaxShardHeaderBytes));
  }
  const int64_t crc_at = kShardPreambleBytes + header_len;
  if (size < crc_at + 4) {
    return Corrupt(file, "truncated at byte " + std::to_string(size) +
                             ": the header ends at byte " + std::to_string(crc_at + 4));
  }
  const std::string_view header = bytes.substr(kShardPreambleBytes, header_len);
  if (Crc32c(header.data(), header.size()) != Load<uint32_t>(bytes, crc_at)) {
    return Corrupt(file, "checksum mismatch in the header, " + Range(kShardPreambleBytes, crc_at));
  }
  MRTRAIN_ASSIGN_OR_RETURN(ShardHeader h, DecodeShardHeader(header, file));
  MRTRAIN_RETURN_IF_ERROR(CheckShape(h, size, file));
  MRTRAIN_RETURN_IF_ERROR(CheckSections(h, AlignShardOffset(crc_at + 4), size, file));
  return h;
}

Status CheckShardBody(std::string_view bytes, const ShardHeader& h, const std::string& file) {
  for (size_t i = 0; i < h.sections.size(); ++i) {
    const ShardSection& s = h.sections[i];
    if (Crc32c(bytes.data() + s.offset, s.bytes) != s.crc) {
      return Corrupt(file, std::string("checksum mismatch in section ") + SectionName(h, i) + ", " +
                               Range(s.offset, s.offset + s.bytes));
    }
  }
  if (h.layout == ShardLayout::kCsr) return CheckCsr(bytes, h, file);
  return Status::Ok();
}

Result<PartitionData> DecodeShardBody(std::string_view bytes, const ShardHeader& h,
                                      const std::string& file) {
  MRTRAIN_RETURN_IF_ERROR(CheckShardBody(bytes, h, file));
  PartitionData d = ShardPartitionShell(h);
  d.labels = Copy<float>(bytes, h.sections[0]);
  if (d.is_sparse) {
    d.row_offsets = Copy<int64_t>(bytes, h.sections[1]);
    d.cols = Copy<uint32_t>(bytes, h.sections[2]);
    d.values = Copy<float>(bytes, h.sections[3]);
  } else {
    d.dense = Copy<float>(bytes, h.sections[1]);
  }
  return d;
}

Result<MappedShard> MappedShard::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IOError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IOError("cannot stat " + path + ": " + std::strerror(err));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = nullptr;
  if (size > 0) {
    map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return IOError("cannot map " + path + ": " + std::strerror(err));
    }
  }
  ::close(fd);  // the mapping keeps the file
  MappedShard shard(path, map, size);
  shard.identity_ = FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                                 static_cast<int64_t>(st.st_size),
                                 st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                                 st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec};
  MRTRAIN_ASSIGN_OR_RETURN(shard.header_, ReadShardHeader(shard.bytes(), path));
  return shard;
}

MappedShard::MappedShard(MappedShard&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      identity_(other.identity_),
      header_(std::move(other.header_)) {}

MappedShard& MappedShard::operator=(MappedShard&& other) noexcept {
  if (this != &other) {
    if (map_ != nullptr) ::munmap(map_, size_);
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    identity_ = other.identity_;
    header_ = std::move(other.header_);
  }
  return *this;
}

MappedShard::~MappedShard() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

void MappedShard::Populate() const {
  if (map_ == nullptr) return;
  // Kernels before 5.14 lack MADV_POPULATE_READ (EINVAL): then only start reading the file in.
  if (::madvise(map_, size_, MADV_POPULATE_READ) != 0) ::madvise(map_, size_, MADV_WILLNEED);
}

PartitionData MappedShard::Borrow(std::shared_ptr<const MappedShard> shard) {
  const ShardHeader& h = shard->header_;
  const std::string_view bytes = shard->bytes();
  PartitionData d = ShardPartitionShell(h);
  PartitionData::Borrowed b;
  b.labels = SectionAt<float>(bytes, h.sections[0]);
  if (d.is_sparse) {
    b.row_offsets = SectionAt<int64_t>(bytes, h.sections[1]);
    b.cols = SectionAt<uint32_t>(bytes, h.sections[2]);
    b.values = SectionAt<float>(bytes, h.sections[3]);
  } else {
    b.dense = SectionAt<float>(bytes, h.sections[1]);
  }
  for (const ShardSection& s : h.sections) b.bytes += s.bytes;
  b.lease = std::move(shard);
  d.borrowed = std::move(b);
  return d;
}

}  // namespace mrtrain::data
