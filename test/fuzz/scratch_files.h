#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mrtrain::fuzz {

// The folder where a fuzz target writes its input files: one per process, created on first use
// under $TEST_TMPDIR, else /dev/shm (no disk writes per input), else /tmp, and removed at exit.
// Targets overwrite the same few names each run. Not thread-safe, like libFuzzer's callback.
const std::string& ScratchDir();

// Writes bytes [data, data + size) to ScratchDir()/name, replacing it, and returns its path.
// Aborts when the file cannot be written: the target would otherwise test nothing.
std::string WriteScratchFile(const std::string& name, const uint8_t* data, size_t size);
std::string WriteScratchFile(const std::string& name, const std::string& contents);

// Makes ScratchDir()/name an empty folder, removing what an earlier input left there, and
// returns its path.
std::string ResetScratchFolder(const std::string& name);

}  // namespace mrtrain::fuzz
