#include "engine/data/csv_reader.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "engine/data/line_reader.h"
#include "engine/data/text_dataset.h"

namespace mrtrain::data {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// A line without the byte order mark some editors put at the start of a file.
std::string_view StripBom(std::string_view line, const LineContext& where) {
  if (where.offset == 0 && line.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
    line.remove_prefix(kUtf8Bom.size());
  }
  return line;
}

bool IsBlank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t'; });
}

// Splits a line into fields one at a time; fields come trimmed and unquoted.
class FieldSplitter {
 public:
  FieldSplitter(std::string_view line, char delimiter) : rest_(line), delimiter_(delimiter) {}

  std::string_view Next() {
    const void* d = std::memchr(rest_.data(), delimiter_, rest_.size());
    size_t len = d ? static_cast<const char*>(d) - rest_.data() : rest_.size();
    std::string_view field = rest_.substr(0, len);
    rest_.remove_prefix(std::min(rest_.size(), len + 1));
    return Clean(field);
  }

 private:
  std::string_view Clean(std::string_view field) const {
    auto is_pad = [this](char c) { return c == ' ' || (c == '\t' && delimiter_ != '\t'); };
    while (!field.empty() && is_pad(field.front())) field.remove_prefix(1);
    while (!field.empty() && is_pad(field.back())) field.remove_suffix(1);
    if (field.size() >= 2 && field.front() == '"' && field.back() == '"') {
      field = field.substr(1, field.size() - 2);
    }
    return field;
  }

  std::string_view rest_;
  char delimiter_;
};

int64_t CountFields(std::string_view line, char delimiter) {
  return 1 + std::count(line.begin(), line.end(), delimiter);
}

std::vector<std::string> SplitAll(std::string_view line, char delimiter) {
  std::vector<std::string> fields;
  FieldSplitter splitter(line, delimiter);
  for (int64_t i = CountFields(line, delimiter); i > 0; --i) {
    fields.emplace_back(splitter.Next());
  }
  return fields;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// What Open learns from the dataset's first line.
struct CsvLayout {
  int64_t num_columns = 0;
  int64_t label = 0;                // 0-based column of the label
  std::vector<std::string> header;  // empty without csv_header
  std::string header_file;          // where the header (or first row) was read
};

class CsvDataset : public TextDataset {
 public:
  CsvDataset(DatasetSpec spec, std::vector<std::string> files, TextSplits splits, CsvLayout layout)
      : TextDataset(std::move(spec), std::move(files), std::move(splits)),
        layout_(std::move(layout)) {}

 protected:
  void InitPartition(PartitionData* out) const override { out->num_cols = layout_.num_columns - 1; }

  Status ParseLine(std::string_view line, const LineContext& where,
                   PartitionData* out) const override {
    line = StripBom(line, where);
    if (spec().csv_header && where.offset == 0) return CheckHeader(line);
    if (IsBlank(line)) return Status::Ok();
    const int64_t count = CountFields(line, spec().delimiter);
    if (count != layout_.num_columns) {
      return CorruptionError("expected " + std::to_string(layout_.num_columns) + " columns, got " +
                             std::to_string(count));
    }
    const float scale = spec().scale != 0 ? static_cast<float>(spec().scale) : 1.0f;
    FieldSplitter splitter(line, spec().delimiter);
    for (int64_t c = 0; c < count; ++c) {
      std::string_view field = splitter.Next();
      float value;
      if (!ParseFloat(field, &value)) {
        return CorruptionError("column " + std::to_string(c + 1) + ": expected a number, got " +
                               QuoteToken(field));
      }
      if (c == layout_.label) {
        out->labels.push_back(value);
      } else {
        out->dense.push_back(value * scale);
      }
    }
    return Status::Ok();
  }

 private:
  // Files of one dataset must agree on their columns, or features would silently shift.
  Status CheckHeader(std::string_view line) const {
    if (SplitAll(line, spec().delimiter) == layout_.header) return Status::Ok();
    return InvalidArgumentError("header differs from the header of " + layout_.header_file + " (" +
                                JoinNames(layout_.header) + ")");
  }

  CsvLayout layout_;
};

// Lines sampled to find the width of a dataset without a header: enough that a few bad rows
// at the start cannot outvote the good ones, few enough to read in no time.
constexpr size_t kWidthSampleLines = 100;

// The column count most of `counts` have; the earliest of equally common ones.
int64_t MostCommon(const std::vector<int64_t>& counts) {
  int64_t best = counts.front();
  int64_t best_votes = 0;
  for (int64_t c : counts) {
    const int64_t votes = std::count(counts.begin(), counts.end(), c);
    if (votes > best_votes) {
      best = c;
      best_votes = votes;
    }
  }
  return best;
}

// Learns the columns of the dataset: from the header (the first line of the first file that has
// one) with csv_header, otherwise as the most common column count of the first
// kWidthSampleLines non-blank lines, so that a malformed first row does not make every good
// row look bad.
Result<CsvLayout> ReadLayout(const DatasetSpec& spec, const std::vector<std::string>& files) {
  std::vector<int64_t> counts;
  CsvLayout layout;
  for (const std::string& file : files) {
    MRTRAIN_ASSIGN_OR_RETURN(auto reader, LineReader::Open(file, MaxLineBytes(spec)));
    std::string_view line;
    LineContext where;
    while (counts.size() < kWidthSampleLines) {
      MRTRAIN_ASSIGN_OR_RETURN(bool more, reader->Next(&line, &where.offset));
      if (!more) break;
      line = StripBom(line, where);
      if (!spec.csv_header && IsBlank(line)) continue;
      if (layout.header_file.empty()) layout.header_file = file;
      if (spec.csv_header) {
        layout.num_columns = CountFields(line, spec.delimiter);
        layout.header = SplitAll(line, spec.delimiter);
        return layout;
      }
      counts.push_back(CountFields(line, spec.delimiter));
    }
  }
  if (counts.empty()) {
    return InvalidArgumentError(spec.path + ": no csv rows in " + std::to_string(files.size()) +
                                " file(s)");
  }
  layout.num_columns = MostCommon(counts);
  return layout;
}

Status ResolveLabelColumn(const DatasetSpec& spec, CsvLayout* layout) {
  const std::string& name = spec.label_column;
  int64_t index;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
  if (!name.empty() && ec == std::errc() && ptr == name.data() + name.size()) {
    if (index < -layout->num_columns || index >= layout->num_columns) {
      return InvalidArgumentError("label_column " + name +
                                  " is out of range: " + layout->header_file + " has " +
                                  std::to_string(layout->num_columns) + " columns");
    }
    layout->label = index < 0 ? layout->num_columns + index : index;
    return Status::Ok();
  }
  if (!spec.csv_header) {
    return InvalidArgumentError("label_column '" + name +
                                "' is a column name, which needs csv_header: true");
  }
  auto it = std::find(layout->header.begin(), layout->header.end(), name);
  if (it == layout->header.end()) {
    return InvalidArgumentError("label_column '" + name + "' is not in the header of " +
                                layout->header_file + " (" + JoinNames(layout->header) + ")");
  }
  layout->label = it - layout->header.begin();
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Dataset>> OpenCsvDataset(const DatasetSpec& spec,
                                                std::vector<std::string> files) {
  MRTRAIN_ASSIGN_OR_RETURN(TextSplits splits, TextSplits::Create(files, spec.num_partitions));
  MRTRAIN_ASSIGN_OR_RETURN(CsvLayout layout, ReadLayout(spec, files));
  MRTRAIN_RETURN_IF_ERROR(ResolveLabelColumn(spec, &layout));
  return std::unique_ptr<Dataset>(
      std::make_unique<CsvDataset>(spec, std::move(files), std::move(splits), std::move(layout)));
}

}  // namespace mrtrain::data
