#include "engine/data/criteo_reader.h"

#include <charconv>

#include "engine/data/feature_hash.h"
#include "engine/data/text_dataset.h"

namespace mrtrain::data {
namespace {

constexpr int kFields = 1 + kCriteoIntColumns + kCriteoCatColumns;

// "I3" or "C7": the names the Criteo data uses for its columns, for messages.
std::string ColumnName(int column) {
  return column <= kCriteoIntColumns ? "I" + std::to_string(column)
                                     : "C" + std::to_string(column - kCriteoIntColumns);
}

class CriteoDataset : public TextDataset {
 public:
  CriteoDataset(DatasetSpec spec, std::vector<std::string> files, TextSplits splits)
      : TextDataset(std::move(spec), std::move(files), std::move(splits)) {}

 protected:
  void InitPartition(PartitionData* out) const override {
    out->is_sparse = true;
    out->row_offsets.push_back(0);
  }

  Status ParseLine(std::string_view line, const LineContext& where,
                   PartitionData* out) const override {
    if (line.empty()) return Status::Ok();  // a blank line, often the last one
    std::string_view fields[kFields];
    int count = 0;
    for (size_t begin = 0;;) {
      const size_t tab = line.find('\t', begin);
      const size_t end = tab == std::string_view::npos ? line.size() : tab;
      if (count < kFields) fields[count] = line.substr(begin, end - begin);
      ++count;
      if (tab == std::string_view::npos) break;
      begin = tab + 1;
    }
    if (count != kFields) {
      return CorruptionError("expected " + std::to_string(kFields) +
                             " tab-separated fields (label, 13 integers, 26 categories), got " +
                             std::to_string(count));
    }
    if (fields[0] != "0" && fields[0] != "1") {
      return CorruptionError("label: expected 0 or 1, got " + QuoteToken(fields[0]));
    }
    out->labels.push_back(fields[0] == "1" ? 1.0f : 0.0f);
    const size_t row_begin = out->cols.size();
    const int bits = spec().hash_bits;
    for (int column = 1; column < kFields; ++column) {
      std::string_view token = fields[column];
      if (token.empty()) continue;  // missing: no feature
      std::string int_token;
      if (column <= kCriteoIntColumns) {
        int64_t v;
        const char* end = token.data() + token.size();
        auto [ptr, ec] = std::from_chars(token.data(), end, v);
        if (ec != std::errc() || ptr != end) {
          return CorruptionError("column " + ColumnName(column) + " (field " +
                                 std::to_string(column + 1) + "): expected an integer, got " +
                                 QuoteToken(token));
        }
        int_token = CriteoIntToken(v);
        token = int_token;
      }
      out->cols.push_back(HashBucket(HashCriteoToken(static_cast<uint32_t>(column), token), bits));
      out->values.push_back(1.0f);
    }
    SortAndMergeRow(row_begin, &out->cols, &out->values);
    out->row_offsets.push_back(static_cast<int64_t>(out->cols.size()));
    return Status::Ok();
  }

  Status FinishPartition(PartitionData* out) const override {
    out->num_cols = int64_t{1} << spec().hash_bits;
    return Status::Ok();
  }
};

}  // namespace

Result<std::unique_ptr<Dataset>> OpenCriteoDataset(const DatasetSpec& spec,
                                                   std::vector<std::string> files) {
  MRTRAIN_ASSIGN_OR_RETURN(TextSplits splits, TextSplits::Create(files, spec.num_partitions));
  return std::unique_ptr<Dataset>(
      std::make_unique<CriteoDataset>(spec, std::move(files), std::move(splits)));
}

}  // namespace mrtrain::data
