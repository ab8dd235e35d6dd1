#pragma once

// Private to :checkpoint. Decodes the body of a checkpoint file (everything between the
// preamble and the trailer, see FORMAT.md) from a FILE*, never trusting a length it has not
// checked against the bytes that remain.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint.h"

namespace mrtrain::runtime {

// The unsigned little-endian integer in the `n` (<= 8) bytes at `p`.
uint64_t DecodeLittleEndian(const uint8_t* p, int n);

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
  // A u32 length, then that many bytes.
  Status String(std::string* out, const std::string& what);
  // `count` little-endian floats into `out` (resized only once they are known to be there).
  Status Floats(std::vector<float>* out, uint64_t count, const std::string& what);
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

// Decodes header, tensor table and slots into `c`, rebuilding the layout with
// ModelLayout::Create so that the specs are validated like any other. kCorruption on any
// inconsistency, kIOError when the file cannot be read.
Status DecodeBody(BoundedReader* r, Checkpoint* c);

}  // namespace mrtrain::runtime
