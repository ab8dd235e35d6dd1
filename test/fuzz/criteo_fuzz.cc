// libFuzzer target for the criteo reader (engine/data/criteo_reader.cc) and feature hashing.
//
// Input: one flags byte, then the text of up to three files separated by NUL bytes
// (WriteTextDataset), or of one file. Flags:
//   bits 0-2   hash_bits: 1, 2, 3, 8, 16, 20, 28 or 0 (refused: criteo needs it)
//   bit 6      files named *.tsv.gz: read through zlib (which passes plain bytes through)
//   bit 7      one file holding all the bytes, NULs included (for real gzip streams)

#include <cstddef>
#include <cstdint>

#include "engine/data/dataset.h"
#include "test/fuzz/dataset_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mrtrain::data::DatasetSpec;
  constexpr int kHashBits[] = {1, 2, 3, 8, 16, 20, 28, 0};
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  DatasetSpec spec;
  spec.format = mrtrain::data::DataFormat::kCriteo;
  spec.hash_bits = kHashBits[flags & 7];
  spec.path =
      mrtrain::fuzz::WriteTextDataset(data + 1, size - 1, (flags & 0x40) != 0 ? ".tsv.gz" : ".tsv",
                                      /*one_file=*/(flags & 0x80) != 0);
  mrtrain::fuzz::ExerciseDataset(spec, {1, 2, 3, 7});
  return 0;
}
