// libFuzzer target for the csv reader (engine/data/csv_reader.cc).
//
// Input: one flags byte, then the text of up to three files separated by NUL bytes
// (WriteTextDataset), or of one file. Flags:
//   bit 0      csv_header
//   bits 1-2   label_column: "0", "-1", "2" or the name "y"
//   bits 3-4   delimiter: ',', '\t', ';' or ' '
//   bit 5      scale 0.5 instead of the default
//   bit 6      files named *.csv.gz: read through zlib (which passes plain bytes through)
//   bit 7      one file holding all the bytes, NULs included (for real gzip streams)

#include <cstddef>
#include <cstdint>

#include "engine/data/dataset.h"
#include "test/fuzz/dataset_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using mrtrain::data::DatasetSpec;
  static const char* const kLabelColumns[] = {"0", "-1", "2", "y"};
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  DatasetSpec spec;
  spec.format = mrtrain::data::DataFormat::kCsv;
  spec.csv_header = (flags & 1) != 0;
  spec.label_column = kLabelColumns[(flags >> 1) & 3];
  spec.delimiter = ",\t; "[(flags >> 3) & 3];
  spec.scale = (flags & 0x20) != 0 ? 0.5 : 0;
  spec.path =
      mrtrain::fuzz::WriteTextDataset(data + 1, size - 1, (flags & 0x40) != 0 ? ".csv.gz" : ".csv",
                                      /*one_file=*/(flags & 0x80) != 0);
  mrtrain::fuzz::ExerciseDataset(spec, {1, 2, 3, 7});
  return 0;
}
