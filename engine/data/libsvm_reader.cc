#include "engine/data/libsvm_reader.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>

#include "engine/data/feature_hash.h"
#include "engine/data/text_dataset.h"

namespace mrtrain::data {
namespace {

// cols are uint32; keep one value free so 1 + max index still fits.
constexpr uint64_t kMaxColumn = 0xFFFFFFFEu;

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// Splits off the next whitespace-separated token of *rest; empty when none is left.
std::string_view NextToken(std::string_view* rest) {
  size_t begin = 0;
  while (begin < rest->size() && IsSpace((*rest)[begin])) ++begin;
  size_t end = begin;
  while (end < rest->size() && !IsSpace((*rest)[end])) ++end;
  std::string_view token = rest->substr(begin, end - begin);
  rest->remove_prefix(end);
  return token;
}

bool ParseIndex(std::string_view text, uint64_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

class LibsvmDataset : public TextDataset {
 public:
  LibsvmDataset(DatasetSpec spec, std::vector<std::string> files, TextSplits splits)
      : TextDataset(std::move(spec), std::move(files), std::move(splits)) {}

 protected:
  void InitPartition(PartitionData* out) const override {
    out->is_sparse = true;
    out->row_offsets.push_back(0);
  }

  Status ParseLine(std::string_view line, const LineContext& where,
                   PartitionData* out) const override {
    if (const void* hash = std::memchr(line.data(), '#', line.size())) {
      line = line.substr(0, static_cast<const char*>(hash) - line.data());
    }
    std::string_view token = NextToken(&line);
    if (token.empty()) return Status::Ok();  // blank or comment only
    float label;
    if (!ParseFloat(token, &label)) {
      return CorruptionError("expected a label (a number), got " + QuoteToken(token));
    }
    out->labels.push_back(label);
    const float scale = spec().scale != 0 ? static_cast<float>(spec().scale) : 1.0f;
    const size_t row_begin = out->cols.size();
    std::optional<uint64_t> previous;  // the previous index in this line, as written
    for (int64_t feature = 1;; ++feature) {
      token = NextToken(&line);
      if (token.empty()) break;
      uint64_t index = 0;
      float value;
      MRTRAIN_RETURN_IF_ERROR(ParseFeature(token, feature, previous, &index, &value));
      previous = index;
      out->cols.push_back(spec().hash_bits > 0
                              ? HashBucket(HashLibsvmIndex(index), spec().hash_bits)
                              : static_cast<uint32_t>(index - FirstIndex()));
      out->values.push_back(value * scale);
    }
    // Hashed columns come in any order, and two indices may share one.
    if (spec().hash_bits > 0) SortAndMergeRow(row_begin, &out->cols, &out->values);
    out->row_offsets.push_back(static_cast<int64_t>(out->cols.size()));
    return Status::Ok();
  }

  Status FinishPartition(PartitionData* out) const override {
    if (spec().hash_bits > 0) {
      out->num_cols = int64_t{1} << spec().hash_bits;
      return Status::Ok();
    }
    if (spec().num_features > 0) {
      out->num_cols = spec().num_features;
      return Status::Ok();
    }
    // Columns increase within a row, so each row's last one is its largest.
    int64_t width = 0;
    for (size_t r = 1; r < out->row_offsets.size(); ++r) {
      if (out->row_offsets[r] > out->row_offsets[r - 1]) {
        width = std::max<int64_t>(width, int64_t{out->cols[out->row_offsets[r] - 1]} + 1);
      }
    }
    out->num_cols = width;
    return Status::Ok();
  }

 private:
  uint64_t FirstIndex() const { return spec().zero_based ? 0 : 1; }

  // Parses "index:value", the feature-th pair of its line. Without hashing the index must name
  // a column that fits (index - FirstIndex() < the width); hashed, any 64-bit index does.
  Status ParseFeature(std::string_view token, int64_t feature, std::optional<uint64_t> previous,
                      uint64_t* index_out, float* value) const {
    // Messages are built only on failure: this runs once per feature of the dataset.
    auto fail = [feature](const std::string& why) {
      return CorruptionError("feature " + std::to_string(feature) + ": " + why);
    };
    const size_t colon = token.find(':');
    uint64_t index;
    if (colon == std::string_view::npos || !ParseIndex(token.substr(0, colon), &index)) {
      return fail("expected index:value, got " + QuoteToken(token));
    }
    const uint64_t first = FirstIndex();
    if (index < first) {
      return fail("index 0, but indices are 1-based (set zero_based for 0-based files)");
    }
    if (previous && index <= *previous) {
      return fail("indices must be strictly increasing, got " + std::to_string(index) + " after " +
                  std::to_string(*previous));
    }
    if (!ParseFloat(token.substr(colon + 1), value)) {
      return fail("expected a number after '" + std::string(token.substr(0, colon + 1)) +
                  "', got " + QuoteToken(token.substr(colon + 1)));
    }
    *index_out = index;
    if (spec().hash_bits > 0) return Status::Ok();
    const uint64_t column = index - first;
    if (column > kMaxColumn) return fail("index " + std::to_string(index) + " is too large");
    if (static_cast<int64_t>(column) >= MaxFeatures(spec())) {
      return fail("index " + std::to_string(index) + " is over the limit of " +
                  std::to_string(MaxFeatures(spec())) + " features that max_decoded_mb (" +
                  std::to_string(spec().max_decoded_mb) + " MiB) allows");
    }
    if (spec().num_features > 0 && static_cast<int64_t>(column) >= spec().num_features) {
      return fail("index " + std::to_string(index) + " is out of range for num_features " +
                  std::to_string(spec().num_features));
    }
    return Status::Ok();
  }
};

}  // namespace

Result<std::unique_ptr<Dataset>> OpenLibsvmDataset(const DatasetSpec& spec,
                                                   std::vector<std::string> files) {
  MRTRAIN_ASSIGN_OR_RETURN(TextSplits splits, TextSplits::Create(files, spec.num_partitions));
  return std::unique_ptr<Dataset>(
      std::make_unique<LibsvmDataset>(spec, std::move(files), std::move(splits)));
}

}  // namespace mrtrain::data
