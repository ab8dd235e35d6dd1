#include "engine/data/text_dataset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>

#include "engine/base/check.h"
#include "engine/base/log.h"
#include "engine/data/byte_source.h"
#include "engine/data/line_reader.h"

namespace mrtrain::data {
namespace {

// How many skipped-record reasons a partition keeps: enough to see the pattern.
constexpr size_t kMaxSkippedSamples = 5;

// Sizes of the arrays a parser appends to, so a record that fails halfway can be dropped.
struct Mark {
  explicit Mark(const PartitionData& d)
      : dense(d.dense.size()),
        row_offsets(d.row_offsets.size()),
        cols(d.cols.size()),
        values(d.values.size()),
        labels(d.labels.size()) {}

  void Rollback(PartitionData* d) const {
    d->dense.resize(dense);
    d->row_offsets.resize(row_offsets);
    d->cols.resize(cols);
    d->values.resize(values);
    d->labels.resize(labels);
  }

  size_t dense, row_offsets, cols, values, labels;
};

// What a partition's parsed arrays hold, in bytes (not their slack).
int64_t DecodedBytes(const PartitionData& d) {
  return static_cast<int64_t>(d.dense.size() * sizeof(float) + d.values.size() * sizeof(float) +
                              d.cols.size() * sizeof(uint32_t) + d.labels.size() * sizeof(float) +
                              d.row_offsets.size() * sizeof(int64_t));
}

// Parsing appends with push_back; give back the slack so the cache holds what it counts.
void ShrinkToFit(PartitionData* out) {
  out->dense.shrink_to_fit();
  out->row_offsets.shrink_to_fit();
  out->cols.shrink_to_fit();
  out->values.shrink_to_fit();
  out->labels.shrink_to_fit();
  out->sources.runs.shrink_to_fit();
}

// Starts a run of rows with the row just appended, whose line starts at byte `offset` of `file`.
// A partition reads each file in one piece, so a new file can only come after the last one.
void StartRun(const std::string& file, int64_t offset, PartitionData* out) {
  RowSources& sources = out->sources;
  if (sources.files.empty() || sources.files.back() != file) sources.files.push_back(file);
  sources.runs.push_back({static_cast<int64_t>(out->labels.size()) - 1, offset,
                          static_cast<int32_t>(sources.files.size() - 1)});
}

}  // namespace

TextDataset::TextDataset(DatasetSpec spec, std::vector<std::string> files, TextSplits splits)
    : Dataset(std::move(spec), std::move(files)), splits_(std::move(splits)) {
  WarnAboutEmptyPartitions();
}

// One big .gz file with many partitions trains on one task: worth saying once, up front.
void TextDataset::WarnAboutEmptyPartitions() const {
  if (std::none_of(files().begin(), files().end(), IsGzipPath)) return;
  int64_t empty = 0;
  for (int64_t p = 0; p < num_partitions(); ++p) empty += splits_.pieces(p).empty() ? 1 : 0;
  if (empty == 0) return;
  Logger("data")->warn(
      "{}: {} of {} partitions are empty because gzip files are not split; use several .gz "
      "files or uncompressed ones to spread the work",
      spec().path, empty, num_partitions());
}

Result<PartitionData> TextDataset::LoadPartition(int64_t p) const {
  MRTRAIN_DCHECK(p >= 0 && p < num_partitions());
  PartitionData out;
  InitPartition(&out);
  for (const TextSplits::Piece& piece : splits_.pieces(p)) {
    MRTRAIN_RETURN_IF_ERROR(ParsePiece(piece, &out));
  }
  MRTRAIN_RETURN_IF_ERROR(FinishPartition(&out));
  out.num_rows = static_cast<int64_t>(out.labels.size());
  ShrinkToFit(&out);
  return out;
}

Status TextDataset::ParsePiece(const TextSplits::Piece& piece, PartitionData* out) const {
  MRTRAIN_ASSIGN_OR_RETURN(auto reader, LineReader::Open(files()[piece.file], MaxLineBytes(spec()),
                                                         piece.begin, piece.end));
  std::string_view line;
  LineContext where{piece.file, 0};
  bool in_run = false;  // the previous line gave a row: a row on this one continues its run
  for (;;) {
    MRTRAIN_ASSIGN_OR_RETURN(bool more, reader->Next(&line, &where.offset));
    if (!more) return Status::Ok();
    Mark mark(*out);
    Status status = ParseLine(line, where, out);
    if (status.ok() && out->labels.size() > mark.labels)
      status = CheckLabel(spec(), out->labels.back());
    if (!status.ok()) {
      mark.Rollback(out);
      MRTRAIN_RETURN_IF_ERROR(HandleBadRecord(status, where, out));
    }
    if (DecodedBytes(*out) > DecodedBudgetBytes(spec())) return OverBudget(where);
    const bool gave_row = out->labels.size() > mark.labels;
    if (gave_row && !in_run) StartRun(files()[piece.file], where.offset, out);
    in_run = gave_row;
  }
}

Status TextDataset::OverBudget(const LineContext& where) const {
  const std::string& file = files()[where.file];
  MRTRAIN_ASSIGN_OR_RETURN(int64_t line, LineNumberAt(file, where.offset));
  return InvalidArgumentError(
      file + ":" + std::to_string(line) +
      ": the partition holding this line passes max_decoded_mb (" +
      std::to_string(spec().max_decoded_mb) +
      " MiB) once decoded; use more partitions (a .gz file is never split: use several) or raise "
      "max_decoded_mb");
}

Status TextDataset::HandleBadRecord(const Status& error, const LineContext& where,
                                    PartitionData* out) const {
  const bool skip =
      spec().on_bad_record == BadRecordPolicy::kSkip && error.code() == StatusCode::kCorruption;
  if (skip && out->skipped_samples.size() >= kMaxSkippedSamples) {
    ++out->skipped_records;  // the line number is only for the message: don't pay for it
    return Status::Ok();
  }
  const std::string& file = files()[where.file];
  MRTRAIN_ASSIGN_OR_RETURN(int64_t line, LineNumberAt(file, where.offset));
  Status located = error.WithContext(file + ":" + std::to_string(line));
  if (!skip) return located;
  ++out->skipped_records;
  out->skipped_samples.push_back(located.message());
  return Status::Ok();
}

std::string TextDataset::DescribePartition(int64_t p) const { return splits_.Describe(p, files()); }

bool ParseFloat(std::string_view text, float* out) {
  // from_chars rejects the leading '+' that libsvm labels ("+1") and some exporters write.
  if (text.size() > 1 && text[0] == '+' && text[1] != '-' && text[1] != '+') {
    text.remove_prefix(1);
  }
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && std::isfinite(*out);
}

std::string QuoteToken(std::string_view text) {
  constexpr size_t kMaxShown = 40;
  if (text.size() <= kMaxShown) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, kMaxShown)) + "...'";
}

}  // namespace mrtrain::data
