#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "engine/api/mapper.h"
#include "engine/base/status.h"
#include "engine/data/partition_data.h"

namespace mrtrain::runtime {

// One partition's predictions: CSV lines "label,prediction,score_0,...\n" without the row
// number, which the writer adds (NumberedLines) once it knows where the partition starts.
struct PartPredictions {
  std::string csv;
  int64_t rows = 0;
  int64_t correct = 0;       // predictions equal to the label
  double squared_error = 0;  // sum of (prediction - label)^2
  int64_t skipped = 0;       // bad records the partition's reader skipped
};

// Points `view->rows` at the rows of row-sparse tensors that `rows` need (a model's rows are
// fetched chunk by chunk, never whole). Its error fails the partition.
using RowPreparer = std::function<Status(const api::Rows& rows, api::ParamsView* view)>;

// Predicts `part`'s rows with `mapper` at `params`, in chunks; `prepare_rows`, when set, fills
// in each chunk's rows first. `who` names the mapper (plugin::DescribeMapper), `outputs` is its
// NumOutputs(). kPluginError when the mapper throws. Local predict and the workers' predict
// tasks both render rows here, so a row is the same bytes whoever scored it.
Status PredictPart(const data::PartitionData& part, int64_t num_features,
                   const api::ParamsView& params, api::Mapper& mapper, const std::string& who,
                   int outputs, PartPredictions* out, const RowPreparer& prepare_rows = {});

// "row,label,prediction,score_0,...,score_{outputs-1}\n".
std::string PredictionHeader(int outputs);

// Writes `part`'s lines to `out`, each prefixed with "row," counting up from *row_counter.
void WriteNumberedLines(const PartPredictions& part, int64_t* row_counter, std::ostream& out);

}  // namespace mrtrain::runtime
