#include "runtime/checkpoint/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace mrtrain::runtime {
namespace {

// The directory holding `path`: what has to be fsynced for a rename in it to survive a crash.
std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status FsyncOpened(int fd, const std::string& path) {
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  return rc == 0 ? Status::Ok() : ErrnoError("cannot fsync", path, err);
}

}  // namespace

std::string TempPathFor(const std::string& path) {
  return path + ".tmp." + std::to_string(getpid());
}

Status ErrnoError(const std::string& action, const std::string& path, int err) {
  return IOError(action + " " + path + ": " + std::strerror(err));
}

Status FsyncPath(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  return FsyncOpened(fd, path);
}

Status CommitTempFile(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return ErrnoError("cannot rename " + tmp + " to", path, err);
  }
  const std::string dir = DirectoryOf(path);
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory of", path, errno);
  return FsyncOpened(fd, dir).WithContext("wrote " + path + " but the rename may not be durable");
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = TempPathFor(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return ErrnoError("cannot create", tmp, errno);
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const int err = errno;
  const bool synced = written && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  const int sync_err = errno;
  std::fclose(f);
  if (!written || !synced) {
    std::remove(tmp.c_str());
    return ErrnoError("cannot write", tmp, written ? sync_err : err);
  }
  return CommitTempFile(tmp, path);
}

}  // namespace mrtrain::runtime
