// A main() for fuzz targets outside libFuzzer: runs LLVMFuzzerTestOneInput once on every file
// named on the command line or found (recursively) in a folder named there, in byte order of
// their paths. Arguments starting with '-' are ignored, so a libFuzzer command line (flags,
// then corpus folders) replays the same inputs. A crash or a failed check aborts as it would
// under the fuzzer; reaching the end means every input passed. Exits 1 when no input was found,
// so a corpus test whose folder went missing cannot pass by doing nothing.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

// The regular files under `arg` (or `arg` itself); false when it does not exist.
bool CollectInputs(const std::string& arg, std::vector<std::string>* files) {
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) {
    files->push_back(arg);
    return true;
  }
  if (!fs::is_directory(arg, ec)) return false;
  for (fs::recursive_directory_iterator it(arg, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) files->push_back(it->path().string());
  }
  return !ec;
}

// Runs one input from an exactly sized heap copy, so AddressSanitizer sees any read past it.
bool RunFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size()]);
  std::copy(bytes.begin(), bytes.end(), copy.get());
  LLVMFuzzerTestOneInput(copy.get(), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!arg.empty() && arg[0] == '-') continue;
    if (!CollectInputs(arg, &files)) {
      std::fprintf(stderr, "corpus_main: cannot read %s\n", arg.c_str());
      return 1;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s FILE_OR_FOLDER...: no input files found\n", argv[0]);
    return 1;
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    std::fprintf(stderr, "running %s\n", file.c_str());
    if (!RunFile(file)) {
      std::fprintf(stderr, "corpus_main: cannot read %s\n", file.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "corpus_main: %zu inputs passed\n", files.size());
  return 0;
}
