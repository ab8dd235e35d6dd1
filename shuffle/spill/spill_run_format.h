#pragma once

#include <cstdint>

// Constants of the spill run file format; FORMAT.md beside this file is its grammar. Change
// both together.
namespace mrtrain::shuffle {

inline constexpr char kSpillRunMagic[8] = {'M', 'R', 'S', 'P', 'I', 'L', 'L', '\0'};
inline constexpr uint32_t kSpillRunVersion = 1;
// magic, version, num_records, header_crc
inline constexpr int64_t kSpillRunHeaderBytes = 8 + 4 + 8 + 4;
// key, length before the values; crc after them
inline constexpr int64_t kSpillRecordPrefixBytes = 8 + 4;
inline constexpr int64_t kSpillRecordCrcBytes = 4;

}  // namespace mrtrain::shuffle
