// libFuzzer target for the idx reader (engine/data/idx_reader.cc).
//
// Input: a flags byte, a length byte L, then L bytes of the labels file, then the images file.
// Flags:
//   bit 0   the images file is named *.gz: read through zlib (which passes plain bytes through),
//           so its size is not checked when the dataset opens
//   bit 1   the same for the labels file
//   bit 2   scale 2 instead of the default

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/data/dataset.h"
#include "test/fuzz/dataset_driver.h"
#include "test/fuzz/scratch_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mrtrain::fuzz::WriteScratchFile;
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const size_t labels_size = std::min<size_t>(data[1], size - 2);
  const uint8_t* labels = data + 2;
  const uint8_t* images = labels + labels_size;
  mrtrain::fuzz::ResetScratchFolder("idx");
  mrtrain::data::DatasetSpec spec;
  spec.format = mrtrain::data::DataFormat::kIdx;
  spec.path = WriteScratchFile((flags & 1) != 0 ? "idx/images.gz" : "idx/images", images,
                               data + size - images);
  spec.labels_path =
      WriteScratchFile((flags & 2) != 0 ? "idx/labels.gz" : "idx/labels", labels, labels_size);
  spec.scale = (flags & 4) != 0 ? 2 : 0;
  mrtrain::fuzz::ExerciseDataset(spec, {1, 2, 3, 5});
  return 0;
}
