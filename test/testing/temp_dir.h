#pragma once

#include <string>

namespace mrtrain::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(const std::string& name) const;
  // Writes `contents` to File(name) and returns its path.
  std::string Write(const std::string& name, const std::string& contents) const;
  // Reads a whole file; empty when it does not exist.
  static std::string Read(const std::string& path);

 private:
  std::string path_;
};

}  // namespace mrtrain::testing
