#include "engine/data/shard_dataset.h"

#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "engine/data/shard_reader.h"

namespace mrtrain::data {
namespace {

// The bytes a shard's rows take once copied out: the measure max_decoded_mb limits.
int64_t DecodedBytes(const ShardHeader& h) {
  if (h.layout == ShardLayout::kDense) return h.num_rows * 4 + h.num_rows * h.num_cols * 4;
  return h.num_rows * 4 + (h.num_rows + 1) * 8 + h.nnz * 8;
}

std::string Conversion(const ShardHeader& h) {
  return DescribeSpecFields(h.spec) + " in " + std::to_string(h.num_partitions) + " partitions";
}

Status FromAnotherConversion(const std::string& a, const ShardHeader& ha, const std::string& b,
                             const ShardHeader& hb) {
  return FailedPreconditionError(b + " was converted from " + Conversion(hb) + ", but " + a +
                                 " from " + Conversion(ha) +
                                 ": a shard set holds the files of one conversion");
}

class ShardDataset : public Dataset {
 public:
  ShardDataset(DatasetSpec spec, std::vector<std::string> files, ShardHeader first)
      : Dataset(std::move(spec), std::move(files)), first_(std::move(first)) {
    checked_.reserve(this->files().size());
    for (size_t i = 0; i < this->files().size(); ++i) {
      checked_.push_back(std::make_unique<Checked>());
    }
  }

  Result<PartitionData> LoadPartition(int64_t p) const override {
    MRTRAIN_ASSIGN_OR_RETURN(MappedShard shard, Open(p));
    MRTRAIN_ASSIGN_OR_RETURN(PartitionData data, shard.Decode());
    MRTRAIN_RETURN_IF_ERROR(CheckLabels(data));
    return data;
  }

  // The body is checked (CRCs, CSR structure, labels) on the first borrow of each version of
  // the file, not on every one: the file's identity tells a file replaced or written since
  // apart, and such a file is checked again before any row of it is served.
  Result<PartitionData> BorrowPartition(int64_t p) const override {
    MRTRAIN_ASSIGN_OR_RETURN(MappedShard opened, Open(p));
    auto shard = std::make_shared<const MappedShard>(std::move(opened));
    PartitionData data = MappedShard::Borrow(shard);
    {
      Checked& checked = *checked_[p];
      std::lock_guard<std::mutex> lock(checked.mu);
      if (checked.identity != shard->identity()) {
        MRTRAIN_RETURN_IF_ERROR(shard->CheckBody());
        MRTRAIN_RETURN_IF_ERROR(CheckLabels(data));
        checked.identity = shard->identity();
      }
    }
    // Read ahead on the I/O thread, the file is read and mapped there, not by the task.
    shard->Populate();
    return data;
  }

  std::string DescribePartition(int64_t p) const override { return files()[p]; }

 private:
  struct Checked {
    std::mutex mu;
    std::optional<FileIdentity> identity;  // guarded by mu; of the version last checked
  };

  // Maps partition p's file and checks its header against the set's and the spec's limits.
  Result<MappedShard> Open(int64_t p) const {
    const std::string& file = files()[p];
    MRTRAIN_ASSIGN_OR_RETURN(MappedShard shard, MappedShard::Open(file));
    const ShardHeader& h = shard.header();
    if (h.partition != p || h.spec != first_.spec || h.num_partitions != first_.num_partitions) {
      return FailedPreconditionError(file +
                                     " changed since the dataset was opened: it holds "
                                     "partition " +
                                     std::to_string(h.partition) + " of " + Conversion(h) +
                                     "; expected partition " + std::to_string(p) + " of " +
                                     Conversion(first_));
    }
    // As the text readers do: every model keeps a weight per feature.
    if (h.num_cols > MaxFeatures(spec())) {
      return InvalidArgumentError(file + ": " + std::to_string(h.num_cols) +
                                  " features are over the limit of " +
                                  std::to_string(MaxFeatures(spec())) + " that max_decoded_mb (" +
                                  std::to_string(spec().max_decoded_mb) + " MiB) allows");
    }
    if (DecodedBytes(h) > DecodedBudgetBytes(spec())) {
      return InvalidArgumentError(file + ": the partition's " + std::to_string(DecodedBytes(h)) +
                                  " decoded bytes pass max_decoded_mb (" +
                                  std::to_string(spec().max_decoded_mb) +
                                  " MiB); raise max_decoded_mb or convert into more partitions");
    }
    return shard;
  }

  // The conversion knew the label rule of the job it was given; this job's model may differ.
  Status CheckLabels(const PartitionData& data) const {
    const float* labels = data.label_data();
    for (int64_t r = 0; r < data.num_rows; ++r) {
      Status status = CheckLabel(spec(), labels[r]);
      if (status.ok()) continue;
      const std::optional<std::string> where = DescribeRow(data, r);
      return status.WithContext((where ? *where : "row " + std::to_string(r)) +
                                " (convert the source again with this job's spec to skip or "
                                "fail such records there)");
    }
    return Status::Ok();
  }

  ShardHeader first_;  // one file's header: every file agrees with its spec and partition count
  std::vector<std::unique_ptr<Checked>> checked_;  // [partition]
};

}  // namespace

Result<std::unique_ptr<Dataset>> OpenShardDataset(const DatasetSpec& spec,
                                                  std::vector<std::string> files) {
  std::vector<ShardHeader> headers;
  headers.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    MRTRAIN_ASSIGN_OR_RETURN(MappedShard shard, MappedShard::Open(files[i]));
    headers.push_back(shard.header());
    const ShardHeader& h = headers.back();
    if (h.spec != headers[0].spec || h.num_partitions != headers[0].num_partitions) {
      return FromAnotherConversion(files[0], headers[0], files[i], h);
    }
  }
  const int64_t count = headers[0].num_partitions;
  std::vector<std::string> by_partition(count);
  for (size_t i = 0; i < files.size(); ++i) {
    std::string& slot = by_partition[headers[i].partition];
    if (!slot.empty()) {
      return FailedPreconditionError(slot + " and " + files[i] + " both hold partition " +
                                     std::to_string(headers[i].partition) + " of " +
                                     Conversion(headers[i]));
    }
    slot = files[i];
  }
  for (int64_t p = 0; p < count; ++p) {
    if (by_partition[p].empty()) {
      return FailedPreconditionError(spec.path + " holds " + std::to_string(files.size()) +
                                     " of the " + std::to_string(count) + " shards of " +
                                     Conversion(headers[0]) + ": partition " + std::to_string(p) +
                                     " (" + ShardFileName(p) + ") is missing");
    }
  }
  if (spec.num_partitions != count) {
    return FailedPreconditionError(
        spec.path + ": the spec asks for " + std::to_string(spec.num_partitions) +
        " partitions, but the shards were converted from " + Conversion(headers[0]) +
        ": set partitions to " + std::to_string(count) + " or convert again");
  }
  return std::unique_ptr<Dataset>(
      new ShardDataset(spec, std::move(by_partition), std::move(headers[0])));
}

}  // namespace mrtrain::data
