#include "runtime/checkpoint/checkpoint_decoder.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "engine/base/crc32c.h"
#include "engine/tensor/param_key.h"
#include "runtime/checkpoint/atomic_file.h"

namespace mrtrain::runtime {
namespace {

using checkpoint_format::FileKind;
using checkpoint_format::kMagicSize;
using checkpoint_format::kMaxBlockSize;
using checkpoint_format::kMinHyperparameterBytes;
using checkpoint_format::kPreambleSize;
using checkpoint_format::kRoleBias;
using checkpoint_format::kRoleRowSparseFlag;
using checkpoint_format::kRoleWeight;
using checkpoint_format::kTrailerSize;

std::string Quoted(const std::string& name) { return "'" + name + "'"; }

}  // namespace

uint64_t DecodeLittleEndian(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

bool FitsU32(size_t n) { return n <= std::numeric_limits<uint32_t>::max(); }

// ---- Writing ----

void ChecksummedWriter::PutBytes(const void* data, size_t n) {
  if (error_ != 0 || n == 0) return;
  if (std::fwrite(data, 1, n, file_) != n) {
    error_ = errno != 0 ? errno : EIO;
    return;
  }
  crc_ = Crc32cExtend(crc_, data, n);
  bytes_ += n;
}

void ChecksummedWriter::PutString(const std::string& s) {
  PutU32(static_cast<uint32_t>(s.size()));
  PutBytes(s.data(), s.size());
}

void ChecksummedWriter::PutLittleEndian(uint64_t v, int n) {
  uint8_t buf[8];
  for (int i = 0; i < n; ++i) buf[i] = static_cast<uint8_t>(v >> (8 * i));
  PutBytes(buf, n);
}

Result<WrittenFile> WriteFramedTempFile(
    const std::string& tmp, const FileKind& kind,
    const std::function<Status(ChecksummedWriter*)>& encode_body) {
  FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) return ErrnoError("cannot create", tmp, errno);
  ChecksummedWriter w(file);
  w.PutBytes(kind.magic, kMagicSize);
  w.PutU32(kind.version);
  Status encoded = encode_body(&w);
  if (!encoded.ok()) {
    std::fclose(file);
    return encoded;
  }
  w.PutU64(w.bytes() + kTrailerSize);
  const uint32_t crc = w.crc();  // covers everything before it, total_length included
  w.PutU32(crc);
  int err = w.error();
  if (err == 0 && std::fflush(file) != 0) err = errno;
  if (err == 0 && fsync(fileno(file)) != 0) err = errno;
  if (std::fclose(file) != 0 && err == 0) err = errno;
  if (err != 0) return ErrnoError("cannot write", tmp, err);
  return WrittenFile{w.bytes(), crc};
}

Result<WrittenFile> WriteFramedFile(
    const std::string& path, const FileKind& kind,
    const std::function<void(ChecksummedWriter*)>& encode_body,
    const std::function<void(const std::string& tmp)>& before_commit) {
  const std::string tmp = TempPathFor(path);
  Result<WrittenFile> written = WriteFramedTempFile(tmp, kind, [&](ChecksummedWriter* w) {
    encode_body(w);
    return Status::Ok();
  });
  if (!written.ok()) {
    std::remove(tmp.c_str());
    return written;
  }
  if (before_commit) before_commit(tmp);
  MRTRAIN_RETURN_IF_ERROR(CommitTempFile(tmp, path));
  return written;
}

// ---- Judging the frame ----

namespace {

Result<FilePtr> OpenForRead(const std::string& path, const FileKind& kind, uint64_t* size) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int err = errno;
    if (err == ENOENT) return NotFoundError(path + ": no such " + kind.noun + " file");
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
// kind.version is for the caller to judge.
Result<uint32_t> ReadPreamble(FILE* file, const std::string& path, uint64_t size,
                              const FileKind& kind) {
  uint8_t preamble[kPreambleSize] = {};
  const size_t have = static_cast<size_t>(std::min<uint64_t>(size, kPreambleSize));
  MRTRAIN_RETURN_IF_ERROR(ReadAt(file, path, 0, preamble, have));
  if (std::memcmp(preamble, kind.magic, std::min(have, kMagicSize)) != 0) {
    return CorruptionError(path + ": not an mrtrain " + kind.noun + " (bad magic)");
  }
  if (have < kPreambleSize) {
    return CorruptionError(path + ": truncated at byte " + std::to_string(size) +
                           ": expected the " + std::to_string(kPreambleSize) +
                           "-byte preamble (magic and format version)");
  }
  const uint32_t version = static_cast<uint32_t>(DecodeLittleEndian(preamble + kMagicSize, 4));
  if (version == 0) {
    return CorruptionError(path + ": unknown " + kind.noun + " format version 0");
  }
  return version;
}

Status NewerVersionError(const std::string& path, const FileKind& kind, uint32_t version) {
  return FailedPreconditionError(path + ": written in " + kind.noun + " format version " +
                                 std::to_string(version) +
                                 ", but this build reads versions up to " +
                                 std::to_string(kind.version) + "; resume with a newer mrtrain");
}

// `intact` when the file is long enough to have a trailer and the length it records is the
// file's size: then the file was not cut short and the stored CRC is worth checking.
Status ProbeTrailer(FramedInput* in) {
  in->intact = false;
  if (in->size < kPreambleSize + kTrailerSize) return Status::Ok();
  uint8_t trailer[kTrailerSize];
  MRTRAIN_RETURN_IF_ERROR(
      ReadAt(in->file.get(), in->path, in->size - kTrailerSize, trailer, kTrailerSize));
  in->intact = DecodeLittleEndian(trailer, 8) == in->size;
  in->stored_crc = static_cast<uint32_t>(DecodeLittleEndian(trailer + 8, 4));
  return Status::Ok();
}

// CRC32C of everything before the stored CRC, streamed in chunks so that checking costs no
// memory in proportion to the file.
Status VerifyChecksum(const FramedInput& in) {
  constexpr uint64_t kChunk = 1 << 20;
  const uint64_t covered = in.size - sizeof(uint32_t);
  std::vector<uint8_t> buffer(static_cast<size_t>(std::min(covered, kChunk)));
  uint32_t crc = 0;
  MRTRAIN_RETURN_IF_ERROR(Seek(in.file.get(), in.path, 0));
  for (uint64_t left = covered; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
    if (std::fread(buffer.data(), 1, n, in.file.get()) != n) {
      return ErrnoError("cannot read", in.path, std::ferror(in.file.get()) ? errno : EIO);
    }
    crc = Crc32cExtend(crc, buffer.data(), n);
    left -= n;
  }
  if (crc == in.stored_crc) return Status::Ok();
  return CorruptionError(in.path + ": checksum mismatch (stored " + Hex32(in.stored_crc) +
                         ", computed " + Hex32(crc) + ")");
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

Result<FramedInput> OpenFramedFile(const std::string& path, const FileKind& kind) {
  FramedInput in;
  in.path = path;
  MRTRAIN_ASSIGN_OR_RETURN(in.file, OpenForRead(path, kind, &in.size));
  MRTRAIN_ASSIGN_OR_RETURN(const uint32_t version,
                           ReadPreamble(in.file.get(), path, in.size, kind));
  // With the trailer intact the checksum is verified before anything is decoded. Without it
  // the file was cut short (or its trailer damaged): decoding anyway, with every length
  // bounded by the file, tells the user which field the file ends in.
  MRTRAIN_RETURN_IF_ERROR(ProbeTrailer(&in));
  if (in.intact) MRTRAIN_RETURN_IF_ERROR(VerifyChecksum(in));
  // Every version keeps the preamble and trailer (FORMAT.md), so a newer version with a sound
  // trailer is genuine, while a damaged version field failed the checksum just above.
  if (version > kind.version) return NewerVersionError(path, kind, version);
  MRTRAIN_RETURN_IF_ERROR(Seek(in.file.get(), path, kPreambleSize));
  return in;
}

BoundedReader FramedInput::Body() const {
  return BoundedReader(file.get(), path, kPreambleSize, intact ? size - kTrailerSize : size, size,
                       /*truncated=*/!intact);
}

Status FinishBody(BoundedReader* body, const FramedInput& in) {
  if (!in.intact) return DiagnoseTrailer(body, in.size);
  if (body->remaining() == 0) return Status::Ok();
  return body->Error(std::to_string(body->remaining()) + " unexpected bytes at byte " +
                     std::to_string(body->position()) + ", before the trailer");
}

// ---- Decoding fields ----

BoundedReader::BoundedReader(FILE* file, std::string name, uint64_t position, uint64_t limit,
                             uint64_t file_size, bool truncated)
    : file_(file),
      name_(std::move(name)),
      position_(position),
      limit_(limit),
      file_size_(file_size),
      truncated_(truncated) {}

Status BoundedReader::Error(const std::string& message) const {
  return CorruptionError(name_ + ": " + message);
}

Status BoundedReader::Short(uint64_t n, const std::string& what) const {
  if (truncated_) {
    return Error("truncated at byte " + std::to_string(file_size_) + ": expected " +
                 std::to_string(n) + " bytes of " + what + " at byte " + std::to_string(position_));
  }
  // The trailer is intact and the checksum matched, so the writer itself was wrong.
  return Error("bad length at byte " + std::to_string(position_) + ": " + what + " needs " +
               std::to_string(n) + " bytes but only " + std::to_string(remaining()) +
               " remain before the trailer");
}

Status BoundedReader::CheckCount(uint64_t count, uint64_t min_bytes,
                                 const std::string& what) const {
  if (min_bytes == 0 || count <= remaining() / min_bytes) return Status::Ok();
  const std::string claim = std::to_string(count) + " " + what + " of at least " +
                            std::to_string(min_bytes) + " bytes each";
  if (truncated_) {
    return Error("truncated at byte " + std::to_string(file_size_) + ": expected " + claim +
                 " at byte " + std::to_string(position_) + ", but only " +
                 std::to_string(remaining()) + " bytes remain");
  }
  return Error("bad count at byte " + std::to_string(position_) + ": " + claim +
               " cannot fit in the " + std::to_string(remaining()) + " bytes before the trailer");
}

Status BoundedReader::Bytes(void* out, uint64_t n, const std::string& what) {
  if (n > remaining()) return Short(n, what);
  if (n > 0 && std::fread(out, 1, n, file_) != n) {
    const std::string reason = std::ferror(file_) ? std::strerror(errno) : "the file shrank";
    return IOError(name_ + ": cannot read " + what + " at byte " + std::to_string(position_) +
                   ": " + reason);
  }
  position_ += n;
  return Status::Ok();
}

Status BoundedReader::Skip(uint64_t n, const std::string& what) {
  if (n > remaining()) return Short(n, what);
  if (n > 0 && fseeko(file_, static_cast<off_t>(position_ + n), SEEK_SET) != 0) {
    return IOError(name_ + ": cannot seek past " + what + " at byte " + std::to_string(position_) +
                   ": " + std::strerror(errno));
  }
  position_ += n;
  return Status::Ok();
}

Status BoundedReader::SkipFloats(uint64_t count, const std::string& what) {
  if (count > kMaxFloats || count * sizeof(float) > remaining()) {
    return Short(count > kMaxFloats ? std::numeric_limits<uint64_t>::max() : count * 4, what);
  }
  return Skip(count * sizeof(float), what);
}

Status BoundedReader::U8(uint8_t* out, const std::string& what) { return Bytes(out, 1, what); }

Status BoundedReader::U32(uint32_t* out, const std::string& what) {
  uint8_t buf[4];
  MRTRAIN_RETURN_IF_ERROR(Bytes(buf, 4, what));
  *out = static_cast<uint32_t>(DecodeLittleEndian(buf, 4));
  return Status::Ok();
}

Status BoundedReader::U64(uint64_t* out, const std::string& what) {
  uint8_t buf[8];
  MRTRAIN_RETURN_IF_ERROR(Bytes(buf, 8, what));
  *out = DecodeLittleEndian(buf, 8);
  return Status::Ok();
}

Status BoundedReader::I64(int64_t* out, const std::string& what) {
  uint64_t v = 0;
  MRTRAIN_RETURN_IF_ERROR(U64(&v, what));
  *out = static_cast<int64_t>(v);
  return Status::Ok();
}

Status BoundedReader::NonNegative(int64_t* out, const std::string& what) {
  const uint64_t at = position_;
  MRTRAIN_RETURN_IF_ERROR(I64(out, what));
  if (*out >= 0) return Status::Ok();
  return Error(what + " at byte " + std::to_string(at) + " is negative (" + std::to_string(*out) +
               ")");
}

Status BoundedReader::String(std::string* out, const std::string& what) {
  uint32_t length = 0;
  MRTRAIN_RETURN_IF_ERROR(U32(&length, "the length of " + what));
  if (length > remaining()) return Short(length, what);
  out->resize(length);
  return Bytes(out->data(), length, what);
}

Status BoundedReader::Floats(std::vector<float>* out, uint64_t count, const std::string& what) {
  if (count > kMaxFloats || count * sizeof(float) > remaining()) {
    return Short(count > kMaxFloats ? std::numeric_limits<uint64_t>::max() : count * 4, what);
  }
  out->resize(count);
  return Bytes(out->data(), count * sizeof(float), what);
}

// ---- Shared field groups ----

Status CheckJobHeader(const JobHeader& h) {
  if (h.epochs_done < 0) return InternalError("negative epochs_done");
  if (h.step < 0) return InternalError("negative step");
  if (h.data_shape.num_features < 0 || h.data_shape.num_classes < 0) {
    return InternalError("negative data shape");
  }
  if (h.block_size > kMaxBlockSize) {
    return InternalError("block_size " + std::to_string(h.block_size) + " exceeds the limit of " +
                         std::to_string(kMaxBlockSize));
  }
  bool ok = FitsU32(h.fingerprint.size()) && FitsU32(h.model_type.size()) &&
            FitsU32(h.update_rule.size()) && FitsU32(h.model_params.values().size());
  for (const auto& [key, value] : h.model_params.values()) {
    ok = ok && FitsU32(key.size()) && FitsU32(value.size());
  }
  return ok ? Status::Ok() : InternalError("a string or hyperparameter count exceeds 4 GiB");
}

void EncodeJobHeader(const JobHeader& h, ChecksummedWriter* w) {
  w->PutI64(h.epochs_done);
  w->PutI64(h.step);
  w->PutString(h.fingerprint);
  w->PutString(h.model_type);
  w->PutString(h.update_rule);
  w->PutU32(static_cast<uint32_t>(h.model_params.values().size()));
  for (const auto& [key, value] : h.model_params.values()) {  // std::map: sorted, so stable
    w->PutString(key);
    w->PutString(value);
  }
  w->PutI64(h.data_shape.num_features);
  w->PutI64(h.data_shape.num_classes);
  w->PutU8(h.data_shape.is_sparse ? 1 : 0);
  w->PutI64(h.block_size);
}

namespace {

Status DecodeHyperparameters(BoundedReader* r, api::Hyperparameters* out) {
  uint32_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&count, "the hyperparameter count"));
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, kMinHyperparameterBytes, "hyperparameters"));
  std::string previous;
  for (uint32_t i = 0; i < count; ++i) {
    std::string key, value;
    MRTRAIN_RETURN_IF_ERROR(r->String(&key, "the name of hyperparameter " + std::to_string(i)));
    MRTRAIN_RETURN_IF_ERROR(r->String(&value, "the value of hyperparameter " + Quoted(key)));
    // The writer iterates a std::map, so keys ascend; anything else would not re-encode to
    // the same bytes.
    if (i > 0 && !(previous < key)) {
      return r->Error("hyperparameter " + Quoted(key) + " is out of order or repeated");
    }
    out->Set(key, value);
    previous = std::move(key);
  }
  return Status::Ok();
}

Status DecodeDataShape(BoundedReader* r, api::DataShape* out) {
  MRTRAIN_RETURN_IF_ERROR(r->NonNegative(&out->num_features, "num_features"));
  MRTRAIN_RETURN_IF_ERROR(r->NonNegative(&out->num_classes, "num_classes"));
  uint8_t is_sparse = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U8(&is_sparse, "is_sparse"));
  if (is_sparse > 1) return r->Error("is_sparse is " + std::to_string(is_sparse) + ", not 0 or 1");
  out->is_sparse = is_sparse == 1;
  return Status::Ok();
}

// Reads rank and dims and returns the element count, or an error when a dimension is not
// positive or the product cannot be the size of an array in a file.
Status DecodeShape(BoundedReader* r, const std::string& what, api::TensorSpec* spec,
                   uint64_t* size) {
  uint32_t rank = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&rank, "the rank of " + what));
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(rank, sizeof(int64_t), "dimensions of " + what));
  spec->shape.resize(rank);
  *size = 1;
  for (int64_t& d : spec->shape) {
    MRTRAIN_RETURN_IF_ERROR(r->I64(&d, "a dimension of " + what));
    if (d < 1) return r->Error(what + " has dimension " + std::to_string(d));
    const uint64_t ud = static_cast<uint64_t>(d);
    // Saturate: Floats() reports a count past kMaxFloats as not fitting.
    *size = *size > kMaxFloats / ud ? kMaxFloats + 1 : *size * ud;
  }
  return Status::Ok();
}

}  // namespace

Status DecodeJobHeader(BoundedReader* r, JobHeader* h) {
  MRTRAIN_RETURN_IF_ERROR(r->NonNegative(&h->epochs_done, "epochs_done"));
  MRTRAIN_RETURN_IF_ERROR(r->NonNegative(&h->step, "step"));
  MRTRAIN_RETURN_IF_ERROR(r->String(&h->fingerprint, "fingerprint"));
  MRTRAIN_RETURN_IF_ERROR(r->String(&h->model_type, "model_type"));
  MRTRAIN_RETURN_IF_ERROR(r->String(&h->update_rule, "update_rule"));
  MRTRAIN_RETURN_IF_ERROR(DecodeHyperparameters(r, &h->model_params));
  MRTRAIN_RETURN_IF_ERROR(DecodeDataShape(r, &h->data_shape));
  const uint64_t at = r->position();
  MRTRAIN_RETURN_IF_ERROR(r->I64(&h->block_size, "block_size"));
  // ModelLayout::Create judges the rest, but its arithmetic needs the upper bound first.
  if (h->block_size <= kMaxBlockSize) return Status::Ok();
  return r->Error("block_size at byte " + std::to_string(at) + " is " +
                  std::to_string(h->block_size) + ", more than the limit of " +
                  std::to_string(kMaxBlockSize));
}

void EncodeSpec(const api::TensorSpec& spec, ChecksummedWriter* w) {
  w->PutString(spec.name);
  w->PutU8(
      static_cast<uint8_t>((spec.role == api::TensorSpec::Role::kBias ? kRoleBias : kRoleWeight) |
                           (spec.row_sparse ? kRoleRowSparseFlag : 0)));
  w->PutU32(static_cast<uint32_t>(spec.shape.size()));
  for (int64_t d : spec.shape) w->PutI64(d);
}

Status DecodeSpec(BoundedReader* r, size_t index, api::TensorSpec* spec, uint64_t* size) {
  MRTRAIN_RETURN_IF_ERROR(r->String(&spec->name, "the name of tensor " + std::to_string(index)));
  const std::string what = "tensor " + Quoted(spec->name);
  uint8_t role = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U8(&role, "the role of " + what));
  spec->row_sparse = (role & kRoleRowSparseFlag) != 0;
  role = static_cast<uint8_t>(role & ~kRoleRowSparseFlag);
  if (role != kRoleWeight && role != kRoleBias) {
    return r->Error(what + " has unknown role " + std::to_string(role));
  }
  spec->role = role == kRoleBias ? api::TensorSpec::Role::kBias : api::TensorSpec::Role::kWeight;
  MRTRAIN_RETURN_IF_ERROR(DecodeShape(r, what, spec, size));
  if (!spec->row_sparse) return Status::Ok();
  // Never whole: its stored rows follow where a dense tensor's floats would.
  if (spec->shape.size() != 2) return r->Error("row-sparse " + what + " is not [rows, dim]");
  *size = 0;
  return Status::Ok();
}

}  // namespace mrtrain::runtime
