// libFuzzer target for the kept map output reader (runtime/worker/map_output_store.h:
// ReadKeptOutputFile), which reads back the spill files a worker keeps until its epoch commits.
//
// Input: a mode byte, then the file. With bit 0 of the mode set, the CRC32C of the file is
// appended to it, so that mutated bodies get past the checksum and are decoded as a sound file
// would be; otherwise the file is taken as it is, which reaches the decoder only as a damaged
// or cut-short file.
//
// Checks: a file that does not read is kCorruption naming the file; one that reads holds fewer
// push bytes than the file has, and since the format has one encoding per value, a store that
// spills what was read writes the very bytes it was read from and reads them back equal.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "engine/base/check.h"
#include "engine/base/crc32c.h"
#include "engine/base/status.h"
#include "runtime/worker/map_output_store.h"
#include "test/fuzz/scratch_files.h"
#include "test/testing/temp_dir.h"

namespace {

using mrtrain::runtime::KeptOutput;

void AppendCrc(std::string* file) {
  const uint32_t crc = mrtrain::Crc32c(file->data(), file->size());
  for (int i = 0; i < 4; ++i) file->push_back(static_cast<char>(crc >> (8 * i)));
}

bool Same(const KeptOutput& a, const KeptOutput& b) {
  // Bytes, not values: a NaN loss must come back as the same NaN.
  return std::memcmp(&a.stats.loss_sum, &b.stats.loss_sum, sizeof a.stats.loss_sum) == 0 &&
         a.stats.examples == b.stats.examples && a.stats.correct == b.stats.correct &&
         a.pushes == b.pushes;
}

// The only file under `dir`; empty when there is not exactly one.
std::string OnlyFileIn(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    files.push_back(e.path().string());
  }
  return files.size() == 1 ? files[0] : std::string();
}

// Spills `output` through a store with no memory budget and requires the spill file to be
// `file`, and a Find to return `output`.
void CheckRewrite(const KeptOutput& output, const std::string& file) {
  const std::string dir = mrtrain::fuzz::ResetScratchFolder("store");
  const std::string spill_dir = dir + "/spill";
  mrtrain::runtime::MapOutputStore store(0, spill_dir);
  store.Keep(3, 5, output);
  MRTRAIN_CHECK(store.spilled_entries() == 1 && store.memory_bytes() == 0);
  const std::string spill = OnlyFileIn(spill_dir);
  MRTRAIN_CHECK(!spill.empty());
  MRTRAIN_CHECK(mrtrain::testing::TempDir::Read(spill) == file);
  mrtrain::Result<std::optional<KeptOutput>> found = store.Find(3, 5);
  MRTRAIN_CHECK(found.ok() && found->has_value());
  MRTRAIN_CHECK(Same(**found, output));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) != 0) AppendCrc(&file);
  const std::string path = mrtrain::fuzz::WriteScratchFile("input.kept", file);

  mrtrain::Result<KeptOutput> read = mrtrain::runtime::ReadKeptOutputFile(path);
  if (!read.ok()) {
    MRTRAIN_CHECK(read.status().code() == mrtrain::StatusCode::kCorruption);
    MRTRAIN_CHECK(read.status().message().find(path) != std::string::npos);
    return 0;
  }
  size_t push_bytes = 0;
  for (const mrtrain::runtime::GatherPayload& push : read->pushes) push_bytes += push.size();
  MRTRAIN_CHECK(push_bytes < file.size());
  CheckRewrite(*read, file);
  return 0;
}
