#include "shuffle/spill/spill_run_file.h"

#include <cerrno>
#include <cstring>

#include "engine/base/crc32c.h"
#include "shuffle/spill/spill_run_format.h"

namespace mrtrain::shuffle {
namespace {

// Larger than stdio's default so a merge of many runs reads each in long sequential spans.
constexpr size_t kStdioBufferBytes = size_t{256} << 10;

std::string ErrnoText() { return errno != 0 ? std::string(": ") + std::strerror(errno) : ""; }

}  // namespace

SpillRunWriter::SpillRunWriter(std::string path, std::FILE* file, uint64_t num_records)
    : path_(std::move(path)), file_(file), num_records_(num_records) {}

SpillRunWriter::~SpillRunWriter() {
  if (closed_) return;
  if (file_ != nullptr) std::fclose(file_);
  std::remove(path_.c_str());
}

Result<std::unique_ptr<SpillRunWriter>> SpillRunWriter::Create(const std::string& path,
                                                               uint64_t num_records) {
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IOError("cannot create spill run " + path + ErrnoText());
  std::setvbuf(f, nullptr, _IOFBF, kStdioBufferBytes);
  std::unique_ptr<SpillRunWriter> w(new SpillRunWriter(path, f, num_records));
  char header[kSpillRunHeaderBytes];
  std::memcpy(header, kSpillRunMagic, 8);
  std::memcpy(header + 8, &kSpillRunVersion, 4);
  std::memcpy(header + 12, &num_records, 8);
  const uint32_t crc = Crc32c(header, 20);
  std::memcpy(header + 20, &crc, 4);
  MRTRAIN_RETURN_IF_ERROR(w->Put(header, sizeof header));
  return w;
}

Status SpillRunWriter::Put(const void* data, size_t n) {
  errno = 0;
  if (std::fwrite(data, 1, n, file_) != n) {
    return IOError("cannot write spill run " + path_ + " at offset " + std::to_string(offset_) +
                   ErrnoText());
  }
  offset_ += static_cast<int64_t>(n);
  return Status::Ok();
}

Status SpillRunWriter::Add(ParamKey key, const float* values, uint32_t length) {
  const uint64_t packed = key.packed();
  uint32_t crc = Crc32c(&packed, sizeof packed);
  crc = Crc32cExtend(crc, &length, sizeof length);
  crc = Crc32cExtend(crc, values, length * sizeof(float));
  MRTRAIN_RETURN_IF_ERROR(Put(&packed, sizeof packed));
  MRTRAIN_RETURN_IF_ERROR(Put(&length, sizeof length));
  MRTRAIN_RETURN_IF_ERROR(Put(values, length * sizeof(float)));
  MRTRAIN_RETURN_IF_ERROR(Put(&crc, sizeof crc));
  ++added_;
  return Status::Ok();
}

Status SpillRunWriter::Close() {
  std::FILE* f = file_;
  file_ = nullptr;
  errno = 0;
  // Buffered writes fail here when the disk fills after the last fwrite.
  const bool flushed = std::fflush(f) == 0;
  const std::string why = ErrnoText();
  const bool closed = std::fclose(f) == 0;
  if (!flushed || !closed) {
    return IOError("cannot write spill run " + path_ + " (" + std::to_string(offset_) + " bytes)" +
                   (flushed ? ErrnoText() : why));
  }
  if (added_ != num_records_) {
    return InternalError("spill run " + path_ + " got " + std::to_string(added_) +
                         " records, promised " + std::to_string(num_records_));
  }
  closed_ = true;
  return Status::Ok();
}

SpillRunReader::SpillRunReader(std::string path, std::FILE* file, int64_t max_length)
    : path_(std::move(path)), file_(file), max_length_(max_length) {}

SpillRunReader::~SpillRunReader() { std::fclose(file_); }

Result<std::unique_ptr<SpillRunReader>> SpillRunReader::Open(const std::string& path,
                                                             int64_t max_length) {
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return NotFoundError("cannot open spill run " + path + ErrnoText());
  std::setvbuf(f, nullptr, _IOFBF, kStdioBufferBytes);
  std::unique_ptr<SpillRunReader> r(new SpillRunReader(path, f, max_length));
  MRTRAIN_RETURN_IF_ERROR(r->ReadHeader());
  return r;
}

bool SpillRunReader::Get(void* data, size_t n) {
  const size_t got = std::fread(data, 1, n, file_);
  offset_ += static_cast<int64_t>(got);
  return got == n;
}

Status SpillRunReader::Corrupt(int64_t offset, const std::string& what) const {
  return CorruptionError("spill run " + path_ + " at offset " + std::to_string(offset) + ": " +
                         what);
}

Status SpillRunReader::ReadHeader() {
  char header[kSpillRunHeaderBytes];
  if (!Get(header, sizeof header)) return Corrupt(0, "truncated header");
  uint32_t version, crc;
  std::memcpy(&version, header + 8, 4);
  std::memcpy(&num_records_, header + 12, 8);
  std::memcpy(&crc, header + 20, 4);
  if (Crc32c(header, 20) != crc) return Corrupt(0, "header checksum mismatch");
  if (std::memcmp(header, kSpillRunMagic, 8) != 0) return Corrupt(0, "bad magic");
  if (version != kSpillRunVersion) {
    return Corrupt(
        8, "version " + std::to_string(version) + ", expected " + std::to_string(kSpillRunVersion));
  }
  values_.reserve(max_length_);
  return Status::Ok();
}

Result<bool> SpillRunReader::Next() {
  const int64_t at = offset_;
  if (read_ == num_records_) {
    char extra;
    if (Get(&extra, 1))
      return Corrupt(at, "bytes after the last of " + std::to_string(num_records_) + " records");
    return false;
  }
  const std::string record = "record " + std::to_string(read_);
  uint64_t packed;
  uint32_t length;
  if (!Get(&packed, sizeof packed) || !Get(&length, sizeof length)) {
    return Corrupt(at, record + " truncated (file ends after " + std::to_string(read_) + " of " +
                           std::to_string(num_records_) + " records)");
  }
  if (length == 0 || length > max_length_) {
    return Corrupt(at, record + " holds " + std::to_string(length) + " floats, expected 1 to " +
                           std::to_string(max_length_));
  }
  values_.resize(length);
  uint32_t stored_crc;
  if (!Get(values_.data(), length * sizeof(float)) || !Get(&stored_crc, sizeof stored_crc)) {
    return Corrupt(at, record + " truncated");
  }
  uint32_t crc = Crc32c(&packed, sizeof packed);
  crc = Crc32cExtend(crc, &length, sizeof length);
  crc = Crc32cExtend(crc, values_.data(), length * sizeof(float));
  if (crc != stored_crc) return Corrupt(at, record + " checksum mismatch");
  const ParamKey key = ParamKey::FromPacked(packed);
  if (read_ > 0 && key < key_) return Corrupt(at, record + " key descends");
  key_ = key;
  length_ = length;
  ++read_;
  return true;
}

}  // namespace mrtrain::shuffle
