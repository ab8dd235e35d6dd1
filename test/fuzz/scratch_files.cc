#include "test/fuzz/scratch_files.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace mrtrain::fuzz {
namespace {

std::string ScratchBase() {
  if (const char* base = std::getenv("TEST_TMPDIR")) return base;
  if (::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return "/tmp";
}

// Owns the folder; the function-local static below removes it when the process exits.
class Scratch {
 public:
  Scratch() {
    std::string pattern = ScratchBase() + "/mrtrain-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

const std::string& ScratchDir() {
  static const Scratch scratch;
  return scratch.path();
}

std::string WriteScratchFile(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = ScratchDir() + "/" + name;
  std::FILE* file = std::fopen(path.c_str(), "wb");
  const bool ok = file != nullptr && (size == 0 || std::fwrite(data, 1, size, file) == size);
  if (file == nullptr || std::fclose(file) != 0 || !ok) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

std::string WriteScratchFile(const std::string& name, const std::string& contents) {
  return WriteScratchFile(name, reinterpret_cast<const uint8_t*>(contents.data()), contents.size());
}

std::string ResetScratchFolder(const std::string& name) {
  const std::string path = ScratchDir() + "/" + name;
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (!std::filesystem::create_directories(path, ec)) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), ec.message().c_str());
    std::abort();
  }
  return path;
}

}  // namespace mrtrain::fuzz
