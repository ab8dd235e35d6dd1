#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/base/status.h"
#include "engine/data/partition_data.h"
#include "engine/plugin/plugin_library.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/model_file_reader.h"
#include "runtime/predict/prediction_csv.h"
#include "runtime/worker/mapper_pool.h"

namespace mrtrain::runtime {

// A model ready to score partitions on `threads` threads at once: local predict holds one, a
// worker one per predict job. Both score through ScorePartition, so a row is the same bytes
// whoever scored it. Holds the dense tensors, never the rows of row-sparse ones: those stay in
// the file and each partition reads the rows it needs.
struct PredictModel {
  // The model file's header and dense tensors (state.tensors; no slots, no rows).
  Checkpoint checkpoint;
  std::string path;
  uint64_t file_bytes = 0;  // the model file's size and CRC32C: its identity in the manifest
  uint32_t file_crc32c = 0;
  std::unique_ptr<MapperPool> mappers;
  // The file, where the stored rows of row-sparse tensors are looked up.
  std::unique_ptr<ModelFileReader> file;
  int outputs = 0;  // scores per row (NumOutputs)
  std::string who;  // the mapper, for errors (plugin::DescribeMapper)
};

// Reads the model file at `path` (its header and dense tensors; errors as ReadCheckpointFile's)
// and makes `threads` mappers for it: built in, or "plugin:NAME" from `plugins`.
// kInvalidArgument for a plugin model without its library, kCorruption when the file's tensors
// do not fit its model type, kPluginError for a mapper that throws or reports no outputs.
Result<std::unique_ptr<PredictModel>> LoadPredictModel(const std::string& path,
                                                       const plugin::PluginSet& plugins,
                                                       int threads);

// Scores partition `partition` (for errors) with one of the model's mappers. For a model with
// row-sparse tensors, each chunk of rows first names the rows it needs (Mapper::NeededRows, as
// in training) and only those are read from the file; a stored row is its stored values, a row
// training never updated reads as zeros. kInvalidArgument when the partition has more features
// than the model was trained on; kPluginError when NeededRows throws or names a dense tensor,
// an unknown one or a row out of range, or when Predict reads a row NeededRows did not name.
Status ScorePartition(PredictModel& model, int64_t partition, const data::PartitionData& part,
                      PartPredictions* out);

}  // namespace mrtrain::runtime
