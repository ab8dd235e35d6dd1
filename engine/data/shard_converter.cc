#include "engine/data/shard_converter.h"

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <system_error>

#include "engine/base/thread_pool.h"
#include "engine/data/shard_format.h"
#include "engine/data/shard_source_spec.h"
#include "engine/data/shard_writer.h"

namespace mrtrain::data {
namespace {

namespace fs = std::filesystem;

// An empty (or new) folder: shards of two conversions must never share one.
Status PrepareOutDir(const std::string& out_dir) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return IOError("cannot create " + out_dir + ": " + ec.message());
  std::string first;  // in byte order, so the message does not depend on the listing's order
  for (fs::directory_iterator it(out_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && (first.empty() || name < first)) first = name;
  }
  if (ec) return IOError("cannot list " + out_dir + ": " + ec.message());
  if (first.empty()) return Status::Ok();
  return FailedPreconditionError(out_dir + " is not empty (it holds " + first +
                                 "): convert into a new or empty folder");
}

int64_t FileBytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// The state the partition loop shares: the first error by partition, and the progress.
class ConvertRun {
 public:
  ConvertRun(const Dataset& dataset, const std::string& out_dir, const ConvertOptions& options)
      : dataset_(dataset), options_(options), errors_(dataset.num_partitions()) {
    summary_.totals.num_partitions = dataset.num_partitions();
    for (int64_t p = 0; p < dataset.num_partitions(); ++p) {
      summary_.files.push_back(out_dir + "/" + ShardFileName(p));
    }
    identity_.num_partitions = dataset.num_partitions();
    identity_.spec = SourceSpecFields(dataset.spec());
  }

  void Convert(int64_t p) {
    if (failed_.load()) return;  // the run fails anyway: don't parse the rest
    Status status = ConvertOne(p);
    if (!status.ok()) {
      errors_[p] = status;
      failed_.store(true);
    }
  }

  Result<ConvertSummary> Finish() {
    for (const Status& error : errors_) {
      if (error.ok()) continue;
      for (const std::string& file : summary_.files) std::remove(file.c_str());
      return error;
    }
    return summary_;
  }

 private:
  Status ConvertOne(int64_t p) {
    MRTRAIN_ASSIGN_OR_RETURN(PartitionData data, dataset_.LoadPartition(p));
    ShardIdentity identity = identity_;
    identity.partition = p;
    MRTRAIN_RETURN_IF_ERROR(WriteShard(summary_.files[p], identity, data));
    std::lock_guard<std::mutex> lock(mu_);
    ConvertProgress& totals = summary_.totals;
    ++totals.partitions_done;
    totals.rows += data.num_rows;
    totals.bytes_written += FileBytes(summary_.files[p]);
    summary_.skipped_records += data.skipped_records;
    if (options_.on_progress) options_.on_progress(totals);
    return Status::Ok();
  }

  const Dataset& dataset_;
  const ConvertOptions& options_;
  ShardIdentity identity_;
  std::atomic<bool> failed_{false};
  std::vector<Status> errors_;  // one slot per partition, written by its own index only
  std::mutex mu_;
  ConvertSummary summary_;  // files: constant after construction; the rest guarded by mu_
};

}  // namespace

Result<ConvertSummary> ConvertToShards(const DatasetSpec& spec, const std::string& out_dir,
                                       const ConvertOptions& options) {
  if (spec.format == DataFormat::kShards) {
    return InvalidArgumentError(spec.path + ": already shards; convert reads libsvm, csv or idx");
  }
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Dataset> dataset, Dataset::Open(spec));
  MRTRAIN_RETURN_IF_ERROR(PrepareOutDir(out_dir));
  ConvertRun run(*dataset, out_dir, options);
  ThreadPool pool(options.threads);
  pool.ParallelFor(dataset->num_partitions(), [&run](int64_t p) { run.Convert(p); });
  return run.Finish();
}

}  // namespace mrtrain::data
