#pragma once

// Private to this package: what the checkpoint formats of FORMAT.md share. Every file is
// `preamble body trailer`; the functions here write that frame around a body atomically and,
// when reading, judge the frame (magic, trailer, checksum, version) before any of the body is
// decoded, then decode fields from a FILE*, never trusting a length they have not checked
// against the bytes that remain. They also encode and decode the field groups that two
// formats share: the job header and the tensor specs.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/api/hyperparameters.h"
#include "engine/api/views.h"
#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint_format.h"

namespace mrtrain::runtime {

// The unsigned little-endian integer in the `n` (<= 8) bytes at `p`.
uint64_t DecodeLittleEndian(const uint8_t* p, int n);

// "0x0123abcd".
std::string Hex32(uint32_t v);

bool FitsU32(size_t n);

// Appends to a FILE* and keeps the CRC32C and length of everything written so far, so the
// trailer needs no second pass over the file. The first failure sticks: later puts do nothing
// and its errno is kept for the message. Borrows the FILE*, which must outlive it.
class ChecksummedWriter {
 public:
  explicit ChecksummedWriter(FILE* file) : file_(file) {}

  void PutBytes(const void* data, size_t n);
  void PutU8(uint8_t v) { PutBytes(&v, 1); }
  void PutU32(uint32_t v) { PutLittleEndian(v, 4); }
  void PutU64(uint64_t v) { PutLittleEndian(v, 8); }
  void PutI64(int64_t v) { PutU64(static_cast<uint64_t>(v)); }
  // REQUIRES: FitsU32(s.size()).
  void PutString(const std::string& s);
  void PutFloats(const std::vector<float>& v) { PutBytes(v.data(), v.size() * sizeof(float)); }

  int error() const { return error_; }
  uint32_t crc() const { return crc_; }
  uint64_t bytes() const { return bytes_; }

 private:
  void PutLittleEndian(uint64_t v, int n);

  FILE* file_;
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;
  int error_ = 0;
};

// What a framed file's writer reports: its size and the CRC32C its trailer stores.
struct WrittenFile {
  uint64_t bytes = 0;
  uint32_t crc = 0;
};

// Writes `kind`'s preamble, whatever `encode_body` puts, and the trailer to "<path>.tmp.<pid>",
// flushes and fsyncs it, renames it over `path` and fsyncs the directory (atomic_file.h).
// kIOError naming the path and the OS's reason; the temporary file is removed on failure.
// `before_commit`, when set, runs with the temporary file's path once it is complete and before
// the rename: where fault tests make a writer die, or damage the file, mid-write.
Result<WrittenFile> WriteFramedFile(
    const std::string& path, const checkpoint_format::FileKind& kind,
    const std::function<void(ChecksummedWriter*)>& encode_body,
    const std::function<void(const std::string& tmp)>& before_commit = {});

// The first half of WriteFramedFile for a body whose encoder reads input that may fail midway
// (the final model, streamed from shard files): writes the frame and body to `tmp`, flushes and
// fsyncs it, and commits nothing. Returns the encoder's first error, else kIOError naming `tmp`;
// on failure the caller removes `tmp` (CommitTempFile commits it on success).
Result<WrittenFile> WriteFramedTempFile(
    const std::string& tmp, const checkpoint_format::FileKind& kind,
    const std::function<Status(ChecksummedWriter*)>& encode_body);

// Reads fields front to back from the current position of a FILE* up to `limit`, a byte
// offset: the start of the trailer when the trailer is intact, else the end of the file.
// Every read and every count is checked against the bytes left before `limit` first, so a
// damaged length fails with kCorruption instead of allocating. When the trailer is missing
// (`truncated`) the messages say where the file ends and what was expected there. Borrows the
// FILE*, which must outlive it. Not thread-safe.
class BoundedReader {
 public:
  BoundedReader(FILE* file, std::string name, uint64_t position, uint64_t limit, uint64_t file_size,
                bool truncated);

  Status Bytes(void* out, uint64_t n, const std::string& what);
  Status U8(uint8_t* out, const std::string& what);
  Status U32(uint32_t* out, const std::string& what);
  Status U64(uint64_t* out, const std::string& what);
  Status I64(int64_t* out, const std::string& what);
  // An i64 that must not be negative.
  Status NonNegative(int64_t* out, const std::string& what);
  // A u32 length, then that many bytes.
  Status String(std::string* out, const std::string& what);
  // `count` little-endian floats into `out` (resized only once they are known to be there).
  Status Floats(std::vector<float>* out, uint64_t count, const std::string& what);
  // Moves past `n` bytes, or `count` floats, without reading them: the same checks and errors
  // as Bytes and Floats, for readers that fetch the arrays later by offset.
  Status Skip(uint64_t n, const std::string& what);
  Status SkipFloats(uint64_t count, const std::string& what);
  // Fails unless `count` items of at least `min_bytes` each fit in what remains.
  Status CheckCount(uint64_t count, uint64_t min_bytes, const std::string& what) const;

  // kCorruption "<name>: <message>".
  Status Error(const std::string& message) const;

  uint64_t position() const { return position_; }
  uint64_t remaining() const { return limit_ - position_; }

 private:
  Status Short(uint64_t n, const std::string& what) const;

  FILE* file_;
  std::string name_;
  uint64_t position_;
  uint64_t limit_;
  uint64_t file_size_;
  bool truncated_;
};

struct FileCloser {
  void operator()(FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

// A file whose frame has been judged (FORMAT.md, "Reading", steps 1 to 3), positioned at the
// first byte of its body.
struct FramedInput {
  FilePtr file;
  std::string path;
  uint64_t size = 0;
  // The trailer records the file's size, so the file was not cut short and its CRC matched.
  bool intact = false;
  uint32_t stored_crc = 0;  // the trailer's CRC; meaningful when intact

  // Reads the body: up to the trailer when intact, else to the end of the file.
  BoundedReader Body() const;
};

// Opens `path` and judges its frame: kind's magic, then, when the trailer is intact, the CRC
// over the whole file, then the version. Fails with kNotFound when `path` does not exist,
// kIOError when it cannot be read, kFailedPrecondition for a version newer than kind.version
// (both numbers named), kCorruption for a bad magic, version 0 or a checksum mismatch. A file
// without an intact trailer is returned for its body to be decoded only to say where it ends:
// FinishBody then fails.
Result<FramedInput> OpenFramedFile(const std::string& path,
                                   const checkpoint_format::FileKind& kind);

// After the body of `in` was decoded: kCorruption when bytes remain before the trailer or
// when the trailer is not intact (saying whether the file ends inside it, runs on past it, or
// records another length).
Status FinishBody(BoundedReader* body, const FramedInput& in);

// The fields that open both a checkpoint and a manifest (FORMAT.md, `header`).
struct JobHeader {
  int64_t epochs_done = 0;
  int64_t step = 0;
  std::string fingerprint;
  std::string model_type;
  std::string update_rule;
  api::Hyperparameters model_params;
  api::DataShape data_shape;
  int64_t block_size = 0;
};

// kInternal when the decoder would refuse `h` or a string does not fit its length field;
// block_size < 1 is left to ModelLayout::Create.
Status CheckJobHeader(const JobHeader& h);
void EncodeJobHeader(const JobHeader& h, ChecksummedWriter* w);
// kCorruption for a negative count, unordered hyperparameters or a block_size past the limit.
Status DecodeJobHeader(BoundedReader* r, JobHeader* h);

// A tensor's name, role and shape (FORMAT.md, `spec`). REQUIRES: FitsU32(spec.name.size()).
void EncodeSpec(const api::TensorSpec& spec, ChecksummedWriter* w);
// The largest float count whose byte size still fits in 63 bits.
inline constexpr uint64_t kMaxFloats =
    static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / sizeof(float);

// Decodes the spec of tensor `index`; `size` gets its element count, or kMaxFloats + 1 when
// the shape holds more than any file could (so Floats() refuses it). kCorruption for an
// unknown role or a dimension below 1.
Status DecodeSpec(BoundedReader* r, size_t index, api::TensorSpec* spec, uint64_t* size);

}  // namespace mrtrain::runtime
