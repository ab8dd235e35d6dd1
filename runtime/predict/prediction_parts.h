#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "runtime/predict/prediction_csv.h"

namespace mrtrain::runtime {

// A folder of predictions, one file per partition and a manifest:
//
//   DIR/part-00000.csv ...  PredictionHeader, then the partition's rows numbered globally (the
//                           rows of the partitions before it come first), so the parts'
//                           bodies in partition order are exactly local predict's single file
//                           after its header.
//   DIR/manifest.json       written last: the commit point. A folder without it is unfinished;
//                           a part it does not list (an older attempt's) is not output.
//
// Every file is written atomically (temp file, fsync, rename), so a part is either complete or
// absent, and writing the same partition again gives the same bytes.

// "part-00007.csv" (five digits at least; more for partition 100000 and up).
std::string PredictionPartName(int64_t partition);
inline constexpr const char* kPredictionManifestName = "manifest.json";

// What the manifest records of one part.
struct PredictionPart {
  int64_t partition = 0;
  std::string file;  // PredictionPartName(partition)
  int64_t first_row = 0;
  int64_t rows = 0;
  uint64_t bytes = 0;
  uint32_t crc32c = 0;  // of the file's bytes
  // For the summary: predictions equal to the label, sum of squared errors, skipped records.
  int64_t correct = 0;
  double squared_error = 0;
  int64_t skipped = 0;
};

// Writes `dir`/PredictionPartName(partition) atomically (creating `dir`). kIOError naming the
// file.
Result<PredictionPart> WritePredictionPart(const std::string& dir, int64_t partition,
                                           int64_t first_row, int outputs,
                                           const PartPredictions& part);

// The model the predictions came from: the file and its bytes' identity.
struct ModelIdentity {
  std::string path;
  uint64_t bytes = 0;
  uint32_t crc32c = 0;  // of the model file's bytes
};

struct PredictionManifest {
  ModelIdentity model;
  int outputs = 0;
  bool classifier = false;
  std::vector<PredictionPart> parts;  // by partition, 0..n-1
};

// Removes `dir`/manifest.json, if there is one, before a run writes its parts there: a folder
// whose parts are being replaced is not committed (an old manifest would vouch for parts it did
// not list). kIOError naming the file when it stays.
Status RemovePredictionManifest(const std::string& dir);

// Writes `dir`/manifest.json atomically. Call it after every part is written.
Status WritePredictionManifest(const std::string& dir, const PredictionManifest& manifest);

// Reads `dir`/manifest.json and checks every part it lists against its size and CRC32C.
// kNotFound when there is no manifest (an unfinished folder); kCorruption naming the file and
// what did not match.
Result<PredictionManifest> ReadPredictionManifest(const std::string& dir);

}  // namespace mrtrain::runtime
