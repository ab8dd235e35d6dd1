#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"
#include "engine/data/partition_data.h"
#include "engine/data/text_splits.h"

namespace mrtrain::data {

// Where a line came from, for formats that treat some lines specially (a csv header).
struct LineContext {
  int64_t file = 0;    // index into files()
  int64_t offset = 0;  // byte offset of the line in its (decompressed) file
};

// The shared half of the line-per-record formats (csv, libsvm): cuts the files with
// TextSplits, feeds each line of a partition to ParseLine, checks each record's label against
// the spec's label rule, keeps the partition within max_decoded_mb, and turns errors into
// "file:line: why" under the bad-record policy. Thread-safe: LoadPartition keeps no state.
class TextDataset : public Dataset {
 public:
  Result<PartitionData> LoadPartition(int64_t p) const override;
  std::string DescribePartition(int64_t p) const override;

 protected:
  TextDataset(DatasetSpec spec, std::vector<std::string> files, TextSplits splits);

  // Starts an empty partition (dense width, or sparse with row_offsets = {0}).
  virtual void InitPartition(PartitionData* out) const = 0;

  // Appends the record on `line` to *out; a blank or comment line appends nothing. On a
  // kCorruption error the caller drops whatever was appended and reports the message after
  // "file:line: "; other codes fail the load whatever the policy.
  virtual Status ParseLine(std::string_view line, const LineContext& where,
                           PartitionData* out) const = 0;

  // Fills in what is known only after the last row (the sparse width).
  virtual Status FinishPartition(PartitionData* out) const { return Status::Ok(); }

 private:
  void WarnAboutEmptyPartitions() const;
  Status ParsePiece(const TextSplits::Piece& piece, PartitionData* out) const;
  // Fails for a partition whose decoded data passed max_decoded_mb at the line `where`.
  Status OverBudget(const LineContext& where) const;
  // Applies the policy to a record that failed with `error`.
  Status HandleBadRecord(const Status& error, const LineContext& where, PartitionData* out) const;

  TextSplits splits_;
};

// Parses a whole decimal or scientific float ("+1", "-2.5e-3", ".5"); false for anything
// else, including "", trailing bytes and non-finite values.
bool ParseFloat(std::string_view text, float* out);

// Quotes a token for an error message, shortened when long: 'abc'.
std::string QuoteToken(std::string_view text);

}  // namespace mrtrain::data
