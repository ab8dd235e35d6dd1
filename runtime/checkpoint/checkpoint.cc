#include "runtime/checkpoint/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "engine/base/crc32c.h"
#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/checkpoint_decoder.h"
#include "runtime/checkpoint/checkpoint_format.h"

namespace mrtrain::runtime {
namespace {

using checkpoint_format::kFormatVersion;
using checkpoint_format::kMagic;
using checkpoint_format::kMagicSize;
using checkpoint_format::kMaxBlockSize;
using checkpoint_format::kPreambleSize;
using checkpoint_format::kRoleBias;
using checkpoint_format::kRoleWeight;
using checkpoint_format::kTrailerSize;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tensors are written as their in-memory bytes, which the format defines as "
              "little-endian floats");

// Appends to a FILE* and keeps the CRC32C and length of everything written so far, so the
// trailer needs no second pass over the file. The first failure sticks: later puts do nothing
// and its errno is kept for the message.
class ChecksummedWriter {
 public:
  explicit ChecksummedWriter(FILE* file) : file_(file) {}

  void PutBytes(const void* data, size_t n) {
    if (error_ != 0 || n == 0) return;
    if (std::fwrite(data, 1, n, file_) != n) {
      error_ = errno != 0 ? errno : EIO;
      return;
    }
    crc_ = Crc32cExtend(crc_, data, n);
    bytes_ += n;
  }
  void PutU8(uint8_t v) { PutBytes(&v, 1); }
  void PutU32(uint32_t v) { PutLittleEndian(v, 4); }
  void PutU64(uint64_t v) { PutLittleEndian(v, 8); }
  void PutI64(int64_t v) { PutU64(static_cast<uint64_t>(v)); }
  // REQUIRES: s.size() <= UINT32_MAX (CheckWritable).
  void PutString(const std::string& s) {
    PutU32(static_cast<uint32_t>(s.size()));
    PutBytes(s.data(), s.size());
  }
  void PutFloats(const std::vector<float>& v) { PutBytes(v.data(), v.size() * sizeof(float)); }

  int error() const { return error_; }
  uint32_t crc() const { return crc_; }
  uint64_t bytes() const { return bytes_; }

 private:
  void PutLittleEndian(uint64_t v, int n) {
    uint8_t buf[8];
    for (int i = 0; i < n; ++i) buf[i] = static_cast<uint8_t>(v >> (8 * i));
    PutBytes(buf, n);
  }

  FILE* file_;  // borrowed; outlives the writer
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;
  int error_ = 0;
};

bool FitsU32(size_t n) { return n <= std::numeric_limits<uint32_t>::max(); }

// A checkpoint that would not read back as itself is a caller's bug: refuse to write it.
Status CheckStrings(const Checkpoint& c) {
  bool ok = FitsU32(c.fingerprint.size()) && FitsU32(c.model_type.size()) &&
            FitsU32(c.update_rule.size()) && FitsU32(c.model_params.values().size());
  for (const auto& [key, value] : c.model_params.values()) {
    ok = ok && FitsU32(key.size()) && FitsU32(value.size());
  }
  return ok ? Status::Ok() : InternalError("a string or hyperparameter count exceeds 4 GiB");
}

Status CheckArrays(const ModelState& s) {
  const auto& specs = s.layout->specs();
  if (s.tensors.size() != specs.size()) {
    return InternalError("the state has " + std::to_string(s.tensors.size()) +
                         " tensors but its layout " + std::to_string(specs.size()));
  }
  if (!FitsU32(s.slots.size())) return InternalError("too many slots");
  for (size_t t = 0; t < specs.size(); ++t) {
    if (!FitsU32(specs[t].name.size())) return InternalError("a tensor name exceeds 4 GiB");
    const uint64_t want = static_cast<uint64_t>(specs[t].size());
    if (s.tensors[t].size() != want) {
      return InternalError("tensor '" + specs[t].name + "' has " +
                           std::to_string(s.tensors[t].size()) + " floats; its shape needs " +
                           std::to_string(want));
    }
    for (size_t k = 0; k < s.slots.size(); ++k) {
      if (s.slots[k].size() != specs.size() || s.slots[k][t].size() != want) {
        return InternalError("slot " + std::to_string(k) + " does not match tensor '" +
                             specs[t].name + "'");
      }
    }
  }
  return Status::Ok();
}

Status CheckWritable(const Checkpoint& c) {
  if (c.epochs_done < 0) return InternalError("negative epochs_done");
  if (c.state.step < 0) return InternalError("negative step");
  if (c.data_shape.num_features < 0 || c.data_shape.num_classes < 0) {
    return InternalError("negative data shape");
  }
  if (c.state.layout == nullptr) return InternalError("the state has no layout");
  if (c.state.layout->block_size() > kMaxBlockSize) {
    return InternalError("block_size " + std::to_string(c.state.layout->block_size()) +
                         " exceeds the limit of " + std::to_string(kMaxBlockSize));
  }
  MRTRAIN_RETURN_IF_ERROR(CheckStrings(c));
  return CheckArrays(c.state);
}

void EncodeHeader(const Checkpoint& c, ChecksummedWriter* w) {
  w->PutBytes(kMagic, kMagicSize);
  w->PutU32(kFormatVersion);
  w->PutI64(c.epochs_done);
  w->PutI64(c.state.step);
  w->PutString(c.fingerprint);
  w->PutString(c.model_type);
  w->PutString(c.update_rule);
  w->PutU32(static_cast<uint32_t>(c.model_params.values().size()));
  for (const auto& [key, value] : c.model_params.values()) {  // std::map: sorted, so stable
    w->PutString(key);
    w->PutString(value);
  }
  w->PutI64(c.data_shape.num_features);
  w->PutI64(c.data_shape.num_classes);
  w->PutU8(c.data_shape.is_sparse ? 1 : 0);
  w->PutI64(c.state.layout->block_size());
}

void EncodeArrays(const ModelState& s, ChecksummedWriter* w) {
  const auto& specs = s.layout->specs();
  w->PutU32(static_cast<uint32_t>(specs.size()));
  for (size_t t = 0; t < specs.size(); ++t) {
    w->PutString(specs[t].name);
    w->PutU8(specs[t].role == api::TensorSpec::Role::kBias ? kRoleBias : kRoleWeight);
    w->PutU32(static_cast<uint32_t>(specs[t].shape.size()));
    for (int64_t d : specs[t].shape) w->PutI64(d);
    w->PutFloats(s.tensors[t]);
  }
  w->PutU32(static_cast<uint32_t>(s.slots.size()));
  for (const auto& slot : s.slots) {
    for (const auto& tensor : slot) w->PutFloats(tensor);
  }
}

void EncodeTrailer(ChecksummedWriter* w) {
  w->PutU64(w->bytes() + kTrailerSize);
  const uint32_t crc = w->crc();  // covers everything before it, total_length included
  w->PutU32(crc);
}

// Writes, flushes and fsyncs `tmp`. Leaves removing it on failure to the caller.
Status WriteTemp(const std::string& tmp, const Checkpoint& c) {
  FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) return ErrnoError("cannot create", tmp, errno);
  ChecksummedWriter writer(file);
  EncodeHeader(c, &writer);
  EncodeArrays(c.state, &writer);
  EncodeTrailer(&writer);
  int err = writer.error();
  if (err == 0 && std::fflush(file) != 0) err = errno;
  if (err == 0 && fsync(fileno(file)) != 0) err = errno;
  if (std::fclose(file) != 0 && err == 0) err = errno;
  return err == 0 ? Status::Ok() : ErrnoError("cannot write", tmp, err);
}

struct FileCloser {
  void operator()(FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

Result<FilePtr> OpenForRead(const std::string& path, uint64_t* size) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int err = errno;
    if (err == ENOENT) return NotFoundError(path + ": no such checkpoint file");
    return ErrnoError("cannot open", path, err);
  }
  struct stat st;
  if (fstat(fileno(file.get()), &st) != 0) return ErrnoError("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) return IOError(path + ": not a regular file");
  *size = static_cast<uint64_t>(st.st_size);
  return file;
}

Status Seek(FILE* file, const std::string& path, uint64_t offset) {
  if (fseeko(file, static_cast<off_t>(offset), SEEK_SET) == 0) return Status::Ok();
  return ErrnoError("cannot seek in", path, errno);
}

// Reads exactly `n` bytes at `offset` of a file known to be at least offset + n long.
Status ReadAt(FILE* file, const std::string& path, uint64_t offset, void* out, size_t n) {
  MRTRAIN_RETURN_IF_ERROR(Seek(file, path, offset));
  if (std::fread(out, 1, n, file) == n) return Status::Ok();
  const int err = std::ferror(file) ? errno : EIO;
  return ErrnoError("cannot read", path, err);
}

// Checks the magic and returns the format version. Zero is never valid; a version above
// kFormatVersion is for the caller to judge.
Result<uint32_t> ReadPreamble(FILE* file, const std::string& path, uint64_t size) {
  uint8_t preamble[kPreambleSize] = {};
  const size_t have = static_cast<size_t>(std::min<uint64_t>(size, kPreambleSize));
  MRTRAIN_RETURN_IF_ERROR(ReadAt(file, path, 0, preamble, have));
  if (std::memcmp(preamble, kMagic, std::min(have, kMagicSize)) != 0) {
    return CorruptionError(path + ": not an mrtrain checkpoint (bad magic)");
  }
  if (have < kPreambleSize) {
    return CorruptionError(path + ": truncated at byte " + std::to_string(size) +
                           ": expected the " + std::to_string(kPreambleSize) +
                           "-byte preamble (magic and format version)");
  }
  const uint32_t version = static_cast<uint32_t>(DecodeLittleEndian(preamble + kMagicSize, 4));
  if (version == 0) return CorruptionError(path + ": unknown checkpoint format version 0");
  return version;
}

Status NewerVersionError(const std::string& path, uint32_t version) {
  return FailedPreconditionError(path + ": written in checkpoint format version " +
                                 std::to_string(version) +
                                 ", but this build reads versions up to " +
                                 std::to_string(kFormatVersion) + "; resume with a newer mrtrain");
}

// `intact` when the file is long enough to have a trailer and the length it records is the
// file's size: then the file was not cut short and the stored CRC is worth checking.
Status ProbeTrailer(FILE* file, const std::string& path, uint64_t size, bool* intact,
                    uint32_t* stored_crc) {
  *intact = false;
  if (size < kPreambleSize + kTrailerSize) return Status::Ok();
  uint8_t trailer[kTrailerSize];
  MRTRAIN_RETURN_IF_ERROR(ReadAt(file, path, size - kTrailerSize, trailer, kTrailerSize));
  *intact = DecodeLittleEndian(trailer, 8) == size;
  *stored_crc = static_cast<uint32_t>(DecodeLittleEndian(trailer + 8, 4));
  return Status::Ok();
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// CRC32C of everything before the stored CRC, streamed in chunks so that checking costs no
// memory in proportion to the file.
Status VerifyChecksum(FILE* file, const std::string& path, uint64_t size, uint32_t stored) {
  constexpr uint64_t kChunk = 1 << 20;
  const uint64_t covered = size - sizeof(uint32_t);
  std::vector<uint8_t> buffer(static_cast<size_t>(std::min(covered, kChunk)));
  uint32_t crc = 0;
  MRTRAIN_RETURN_IF_ERROR(Seek(file, path, 0));
  for (uint64_t left = covered; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
    if (std::fread(buffer.data(), 1, n, file) != n) {
      return ErrnoError("cannot read", path, std::ferror(file) ? errno : EIO);
    }
    crc = Crc32cExtend(crc, buffer.data(), n);
    left -= n;
  }
  if (crc == stored) return Status::Ok();
  return CorruptionError(path + ": checksum mismatch (stored " + Hex32(stored) + ", computed " +
                         Hex32(crc) + ")");
}

// The body decoded although the trailer does not record the file's size: say whether the
// file ends inside the trailer, runs on past it, or has a damaged trailer. Always an error.
Status DiagnoseTrailer(BoundedReader* reader, uint64_t size) {
  const uint64_t at = reader->position();
  uint8_t trailer[kTrailerSize];
  MRTRAIN_RETURN_IF_ERROR(reader->Bytes(trailer, kTrailerSize, "the trailer"));
  if (reader->remaining() > 0) {
    return reader->Error(std::to_string(reader->remaining()) +
                         " unexpected bytes after the trailer, which ends at byte " +
                         std::to_string(reader->position()));
  }
  return reader->Error("the trailer at byte " + std::to_string(at) + " records a length of " +
                       std::to_string(DecodeLittleEndian(trailer, 8)) +
                       " bytes, but the file has " + std::to_string(size));
}

}  // namespace

Status WriteCheckpointFile(const std::string& path, const Checkpoint& ckpt) {
  MRTRAIN_RETURN_IF_ERROR(CheckWritable(ckpt).WithContext("cannot write checkpoint " + path));
  const std::string tmp = TempPathFor(path);
  Status written = WriteTemp(tmp, ckpt);
  if (!written.ok()) {
    std::remove(tmp.c_str());
    return written;
  }
  return CommitTempFile(tmp, path);
}

Result<Checkpoint> ReadCheckpointFile(const std::string& path) {
  uint64_t size = 0;
  MRTRAIN_ASSIGN_OR_RETURN(FilePtr file, OpenForRead(path, &size));
  MRTRAIN_ASSIGN_OR_RETURN(const uint32_t version, ReadPreamble(file.get(), path, size));
  // With the trailer intact the checksum is verified before anything is decoded. Without it
  // the file was cut short (or its trailer damaged): decoding anyway, with every length
  // bounded by the file, tells the user which field the file ends in.
  bool intact = false;
  uint32_t stored_crc = 0;
  MRTRAIN_RETURN_IF_ERROR(ProbeTrailer(file.get(), path, size, &intact, &stored_crc));
  if (intact) MRTRAIN_RETURN_IF_ERROR(VerifyChecksum(file.get(), path, size, stored_crc));
  // Every version keeps the preamble and trailer (FORMAT.md), so a newer version with a sound
  // trailer is genuine, while a damaged version field failed the checksum just above.
  if (version > kFormatVersion) return NewerVersionError(path, version);
  MRTRAIN_RETURN_IF_ERROR(Seek(file.get(), path, kPreambleSize));
  BoundedReader reader(file.get(), path, kPreambleSize, intact ? size - kTrailerSize : size, size,
                       /*truncated=*/!intact);
  Checkpoint ckpt;
  MRTRAIN_RETURN_IF_ERROR(DecodeBody(&reader, &ckpt));
  if (!intact) return DiagnoseTrailer(&reader, size);
  if (reader.remaining() != 0) {
    return reader.Error(std::to_string(reader.remaining()) + " unexpected bytes at byte " +
                        std::to_string(reader.position()) + ", before the trailer");
  }
  return ckpt;
}

}  // namespace mrtrain::runtime
