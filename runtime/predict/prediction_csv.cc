#include "runtime/predict/prediction_csv.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "engine/plugin/plugin_call.h"
#include "runtime/worker/map_task.h"

namespace mrtrain::runtime {

Status PredictPart(const data::PartitionData& part, int64_t num_features,
                   const api::ParamsView& params, api::Mapper& mapper, const std::string& who,
                   int outputs, PartPredictions* out, const RowPreparer& prepare_rows) {
  const api::Rows all = part.View(num_features);
  std::vector<float> predicted, scores;
  constexpr int64_t kChunk = 1024;
  char buf[32];
  for (int64_t b = 0; b < all.num_rows; b += kChunk) {
    api::Rows rows = SliceRows(all, b, std::min(all.num_rows, b + kChunk));
    predicted.assign(rows.num_rows, 0.0f);
    scores.assign(rows.num_rows * outputs, 0.0f);
    api::ParamsView chunk_params = params;
    if (prepare_rows) MRTRAIN_RETURN_IF_ERROR(prepare_rows(rows, &chunk_params));
    MRTRAIN_RETURN_IF_ERROR(plugin::CallPlugin(who, "Predict", [&] {
      mapper.Predict(rows, chunk_params, predicted.data(), scores.data());
    }));
    for (int64_t i = 0; i < rows.num_rows; ++i) {
      std::snprintf(buf, sizeof buf, "%.9g,%.9g", rows.labels[i], predicted[i]);
      out->csv += buf;
      for (int k = 0; k < outputs; ++k) {
        std::snprintf(buf, sizeof buf, ",%.6g", scores[i * outputs + k]);
        out->csv += buf;
      }
      out->csv += '\n';
      if (predicted[i] == rows.labels[i]) ++out->correct;
      const double error = static_cast<double>(predicted[i]) - rows.labels[i];
      out->squared_error += error * error;
    }
  }
  out->rows = all.num_rows;
  out->skipped = part.skipped_records;
  return Status::Ok();
}

std::string PredictionHeader(int outputs) {
  std::string header = "row,label,prediction";
  for (int k = 0; k < outputs; ++k) header += ",score_" + std::to_string(k);
  return header + "\n";
}

void WriteNumberedLines(const PartPredictions& part, int64_t* row_counter, std::ostream& out) {
  size_t start = 0;
  while (start < part.csv.size()) {
    const size_t end = part.csv.find('\n', start);
    out << (*row_counter)++ << ',';
    out.write(part.csv.data() + start, end + 1 - start);
    start = end + 1;
  }
}

}  // namespace mrtrain::runtime
