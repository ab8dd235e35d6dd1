// libFuzzer target for the libsvm reader (engine/data/libsvm_reader.cc).
//
// Input: one flags byte, then the text of up to three files separated by NUL bytes
// (WriteTextDataset), or of one file. Flags:
//   bit 0      zero_based
//   bits 1-3   num_features: 0 (inferred), 1, 2, 3, 5, 10, 1000 or 2^32
//   bit 4      hash_bits 3 (num_features then 0: the two exclude each other)
//   bit 5      scale 0.5 instead of the default
//   bit 6      files named *.svm.gz: read through zlib (which passes plain bytes through)
//   bit 7      one file holding all the bytes, NULs included (for real gzip streams)

#include <cstddef>
#include <cstdint>

#include "engine/data/dataset.h"
#include "test/fuzz/dataset_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mrtrain::data::DatasetSpec;
  constexpr int64_t kNumFeatures[] = {0, 1, 2, 3, 5, 10, 1000, int64_t{1} << 32};
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  DatasetSpec spec;
  spec.format = mrtrain::data::DataFormat::kLibsvm;
  spec.zero_based = (flags & 1) != 0;
  spec.num_features = kNumFeatures[(flags >> 1) & 7];
  if ((flags & 0x10) != 0) {
    spec.hash_bits = 3;
    spec.num_features = 0;
  }
  spec.scale = (flags & 0x20) != 0 ? 0.5 : 0;
  spec.path =
      mrtrain::fuzz::WriteTextDataset(data + 1, size - 1, (flags & 0x40) != 0 ? ".svm.gz" : ".svm",
                                      /*one_file=*/(flags & 0x80) != 0);
  mrtrain::fuzz::ExerciseDataset(spec, {1, 2, 3, 7});
  return 0;
}
