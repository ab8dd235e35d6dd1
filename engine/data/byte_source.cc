#include "engine/data/byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <climits>

namespace mrtrain::data {
namespace {

// zlib's own input buffer; the default 8 KiB makes it call read() far too often.
constexpr unsigned kGzipBufferBytes = 256 * 1024;

Status ErrnoStatus(const std::string& path, const char* what, int err) {
  std::string message = path + ": " + what + ": " + std::strerror(err);
  return err == ENOENT ? NotFoundError(message) : IOError(message);
}

class PlainSource : public ByteSource {
 public:
  PlainSource(std::string path, int fd) : ByteSource(std::move(path)), fd_(fd) {}
  ~PlainSource() override { ::close(fd_); }

  Result<size_t> Read(char* dst, size_t n) override {
    for (;;) {
      ssize_t got = ::read(fd_, dst, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoStatus(path(), "read", errno);
    }
  }

  Status Skip(int64_t n) override {
    if (n > 0 && ::lseek(fd_, n, SEEK_CUR) < 0) return ErrnoStatus(path(), "seek", errno);
    return Status::Ok();
  }

 private:
  int fd_;
};

class GzipSource : public ByteSource {
 public:
  GzipSource(std::string path, gzFile file) : ByteSource(std::move(path)), file_(file) {}
  ~GzipSource() override { gzclose(file_); }

  Result<size_t> Read(char* dst, size_t n) override {
    // gzread takes an unsigned count but returns an int, so keep each call below INT_MAX.
    unsigned want = static_cast<unsigned>(std::min<size_t>(n, INT_MAX / 2));
    int got = gzread(file_, dst, want);
    if (got < 0) return GzipError();
    // At the end of a truncated stream gzread returns 0 and records Z_BUF_ERROR instead of
    // failing, so a cut-off download would otherwise look like a short, valid file.
    if (got == 0 && want > 0) {
      int err = Z_OK;
      gzerror(file_, &err);
      if (err != Z_OK && err != Z_STREAM_END) return GzipError();
    }
    return static_cast<size_t>(got);
  }

  // zlib inflates and discards the skipped bytes when the next read comes.
  Status Skip(int64_t n) override {
    if (n > 0 && gzseek(file_, static_cast<z_off_t>(n), SEEK_CUR) < 0) return GzipError();
    return Status::Ok();
  }

 private:
  Status GzipError() const {
    int err = Z_OK;
    const char* message = gzerror(file_, &err);
    if (err == Z_ERRNO) return ErrnoStatus(path(), "read", errno);
    return CorruptionError(path() + ": bad gzip data: " + (message ? message : "unknown error"));
  }

  gzFile file_;
};

}  // namespace

bool IsGzipPath(const std::string& path) {
  return path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
}

Result<int64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(path, "stat", errno);
  return static_cast<int64_t>(st.st_size);
}

Result<std::unique_ptr<ByteSource>> ByteSource::Open(const std::string& path, int64_t offset) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, "open", errno);
  if (!IsGzipPath(path)) {
    auto source = std::make_unique<PlainSource>(path, fd);
    MRTRAIN_RETURN_IF_ERROR(source->Skip(offset));
    return std::unique_ptr<ByteSource>(std::move(source));
  }
  gzFile file = gzdopen(fd, "rb");
  if (file == nullptr) {
    ::close(fd);
    return IOError(path + ": gzdopen failed");
  }
  gzbuffer(file, kGzipBufferBytes);
  auto source = std::make_unique<GzipSource>(path, file);
  MRTRAIN_RETURN_IF_ERROR(source->Skip(offset));
  return std::unique_ptr<ByteSource>(std::move(source));
}

Result<size_t> ByteSource::ReadFully(char* dst, size_t n) {
  size_t done = 0;
  while (done < n) {
    MRTRAIN_ASSIGN_OR_RETURN(size_t got, Read(dst + done, n - done));
    if (got == 0) break;
    done += got;
  }
  return done;
}

}  // namespace mrtrain::data
