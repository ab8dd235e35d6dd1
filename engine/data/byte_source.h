#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/base/status.h"

namespace mrtrain::data {

// True when `path` names a gzip file (by its ".gz" suffix, as every reader decides).
bool IsGzipPath(const std::string& path);

// The size of a file on disk (compressed size for gzip files). kNotFound, kIOError.
Result<int64_t> FileSize(const std::string& path);

// A forward-only stream of a file's bytes, gunzipped through zlib for .gz files, so every
// format reads plain and compressed files with the same code. Errors name the file. Not
// thread-safe; owns its file descriptor or gzFile.
class ByteSource {
 public:
  // Opens `path` positioned at byte `offset` of its (decompressed) contents. A gzip file is
  // decompressed up to the offset, since gzip has no random access. kNotFound when the file
  // does not exist, kIOError when the OS refuses.
  static Result<std::unique_ptr<ByteSource>> Open(const std::string& path, int64_t offset = 0);

  virtual ~ByteSource() = default;

  // Reads up to n bytes into dst; returns 0 only at the end of the stream. kIOError, or
  // kCorruption for a bad or truncated gzip stream.
  virtual Result<size_t> Read(char* dst, size_t n) = 0;

  // Reads until n bytes or the end of the stream; returns how many were read.
  Result<size_t> ReadFully(char* dst, size_t n);

  // Moves n >= 0 bytes forward (decompressing them for gzip). Skipping past the end is not an
  // error here: the next Read returns 0.
  virtual Status Skip(int64_t n) = 0;

  const std::string& path() const { return path_; }

 protected:
  explicit ByteSource(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

}  // namespace mrtrain::data
