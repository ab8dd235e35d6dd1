#include "engine/data/dataset.h"

#include <glob.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "engine/data/criteo_reader.h"
#include "engine/data/csv_reader.h"
#include "engine/data/idx_reader.h"
#include "engine/data/libsvm_reader.h"
#include "engine/data/line_reader.h"
#include "engine/data/shard_dataset.h"

namespace mrtrain::data {
namespace {

namespace fs = std::filesystem;

bool IsRegularFile(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// Spark and Hadoop leave markers (_SUCCESS) and checksums (.part-0.crc) beside their output;
// a folder of their output must read as the data files alone.
bool IsHiddenName(const std::string& name) {
  return name.empty() || name[0] == '.' || name[0] == '_';
}

Result<std::vector<std::string>> ListFolder(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!IsHiddenName(name) && IsRegularFile(it->path().string())) {
      files.push_back(it->path().string());
    }
  }
  if (ec) return IOError(path + ": cannot list folder: " + ec.message());
  if (files.empty()) return NotFoundError(path + ": folder has no data files");
  return files;
}

Result<std::vector<std::string>> ExpandGlob(const std::string& pattern) {
  glob_t matches;
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &matches);
  std::vector<std::string> files;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) {
      if (IsRegularFile(matches.gl_pathv[i])) files.emplace_back(matches.gl_pathv[i]);
    }
  }
  globfree(&matches);
  if (rc == GLOB_NOSPACE) return IOError(pattern + ": out of memory expanding the glob");
  if (rc == GLOB_ABORTED) return IOError(pattern + ": cannot read a folder of the glob");
  if (files.empty()) return NotFoundError(pattern + ": no file matches");
  return files;
}

bool HasGlobChars(const std::string& path) {
  return path.find_first_of("*?[") != std::string::npos;
}

Status CheckHashBits(const DatasetSpec& spec) {
  if (spec.format != DataFormat::kLibsvm && spec.format != DataFormat::kCriteo) {
    return InvalidArgumentError(spec.path +
                                ": hash_bits is only for the libsvm and criteo formats");
  }
  if (spec.hash_bits < 1 || spec.hash_bits > kMaxHashBits) {
    return InvalidArgumentError(spec.path + ": hash_bits must be in [1, " +
                                std::to_string(kMaxHashBits) + "], got " +
                                std::to_string(spec.hash_bits) +
                                (spec.format == DataFormat::kCriteo ? " (criteo needs it)" : ""));
  }
  if ((int64_t{1} << spec.hash_bits) > MaxFeatures(spec)) {
    return InvalidArgumentError(spec.path + ": hash_bits " + std::to_string(spec.hash_bits) +
                                " gives 2^" + std::to_string(spec.hash_bits) +
                                " features, over the limit of " +
                                std::to_string(MaxFeatures(spec)) + " that max_decoded_mb (" +
                                std::to_string(spec.max_decoded_mb) + " MiB) allows");
  }
  if (spec.num_features != 0) {
    return InvalidArgumentError(spec.path +
                                ": give num_features or hash_bits, not both (hashing makes the "
                                "width 2^hash_bits)");
  }
  return Status::Ok();
}

Status CheckSpec(const DatasetSpec& spec) {
  if (spec.num_partitions < 1 || spec.num_partitions > kMaxPartitions) {
    return InvalidArgumentError(spec.path + ": num_partitions must be in [1, " +
                                std::to_string(kMaxPartitions) + "], got " +
                                std::to_string(spec.num_partitions));
  }
  if (spec.num_features < 0) {
    return InvalidArgumentError(spec.path + ": num_features must not be negative");
  }
  if (!std::isfinite(spec.scale)) {
    return InvalidArgumentError(spec.path + ": scale must be a finite number");
  }
  if (spec.max_decoded_mb < 1 || spec.max_decoded_mb > kMaxDecodedMbLimit) {
    return InvalidArgumentError(spec.path + ": max_decoded_mb must be in [1, " +
                                std::to_string(kMaxDecodedMbLimit) + "], got " +
                                std::to_string(spec.max_decoded_mb));
  }
  if (spec.num_features > MaxFeatures(spec)) {
    return InvalidArgumentError(spec.path + ": num_features " + std::to_string(spec.num_features) +
                                " is over the limit of " + std::to_string(MaxFeatures(spec)) +
                                " features that max_decoded_mb (" +
                                std::to_string(spec.max_decoded_mb) + " MiB) allows");
  }
  if (spec.hash_bits != 0 || spec.format == DataFormat::kCriteo) {
    MRTRAIN_RETURN_IF_ERROR(CheckHashBits(spec));
  }
  if (spec.label_kind == LabelKind::kClass && spec.num_classes < 1) {
    return InvalidArgumentError(spec.path + ": class labels need num_classes >= 1");
  }
  if (spec.delimiter == '\n' || spec.delimiter == '\r' || spec.delimiter == '"') {
    return InvalidArgumentError(spec.path + ": the csv delimiter cannot be a newline or '\"'");
  }
  return Status::Ok();
}

}  // namespace

int64_t DecodedBudgetBytes(const DatasetSpec& spec) { return spec.max_decoded_mb << 20; }

// A long line is held as text while it is decoded, and its buffer doubles as it grows: a quarter
// of the budget keeps the text well inside it.
int64_t MaxLineBytes(const DatasetSpec& spec) { return DecodedBudgetBytes(spec) / 4; }

// Every model keeps at least one weight per feature: a dense row of them must fit the budget.
int64_t MaxFeatures(const DatasetSpec& spec) {
  return DecodedBudgetBytes(spec) / static_cast<int64_t>(sizeof(float));
}

Status CheckLabel(const DatasetSpec& spec, float label) {
  switch (spec.label_kind) {
    case LabelKind::kAny:
      return Status::Ok();
    case LabelKind::kBinary:
      if (label == 0 || label == 1 || label == -1) return Status::Ok();
      break;
    case LabelKind::kClass:
      // Written so that NaN fails too.
      if (label >= 0 && label < static_cast<float>(spec.num_classes) &&
          std::floor(label) == label) {
        return Status::Ok();
      }
      break;
  }
  char text[32];
  const auto end = std::to_chars(text, text + sizeof(text), label).ptr;
  const std::string expected =
      spec.label_kind == LabelKind::kBinary
          ? "0 or 1 (-1 reads as 0)"
          : "a whole number in [0, " + std::to_string(spec.num_classes) + ")";
  return CorruptionError("label " + std::string(text, end) + ": expected " + expected +
                         (spec.label_rule.empty() ? "" : " (" + spec.label_rule + ")"));
}

Result<DataFormat> ParseDataFormat(const std::string& name) {
  for (DataFormat format : {DataFormat::kLibsvm, DataFormat::kCsv, DataFormat::kIdx,
                            DataFormat::kShards, DataFormat::kCriteo}) {
    if (name == DataFormatName(format)) return format;
  }
  return InvalidArgumentError("unknown data format '" + name +
                              "': expected one of libsvm, csv, idx, shards, criteo");
}

const char* DataFormatName(DataFormat format) {
  switch (format) {
    case DataFormat::kLibsvm:
      return "libsvm";
    case DataFormat::kCsv:
      return "csv";
    case DataFormat::kIdx:
      return "idx";
    case DataFormat::kShards:
      return "shards";
    case DataFormat::kCriteo:
      return "criteo";
  }
  return "unknown";
}

Result<std::vector<std::string>> ResolveFiles(const std::string& path) {
  std::vector<std::string> files;
  std::error_code ec;
  // A file or folder that exists wins over reading its name as a glob ("data[1].csv").
  if (fs::is_directory(path, ec)) {
    MRTRAIN_ASSIGN_OR_RETURN(files, ListFolder(path));
  } else if (IsRegularFile(path)) {
    files.push_back(path);
  } else if (HasGlobChars(path)) {
    MRTRAIN_ASSIGN_OR_RETURN(files, ExpandGlob(path));
  } else if (fs::exists(path, ec)) {
    return InvalidArgumentError(path + ": not a regular file or folder");
  } else {
    return NotFoundError(path + ": no such file or folder");
  }
  // Byte order, not the locale's collation: every process must see the same file order.
  std::sort(files.begin(), files.end());
  return files;
}

std::optional<std::string> DescribeRow(const PartitionData& partition, int64_t row) {
  const std::optional<RowSources::Position> at = partition.sources.Find(row);
  if (!at) return std::nullopt;
  const std::string& file = partition.sources.files[at->file];
  if (partition.sources.unit == RowSources::Unit::kRecord) {
    return file + " record index " + std::to_string(at->run_start + at->after);
  }
  // A run's rows sit on consecutive lines, so only its first line needs counting.
  Result<int64_t> first_line = LineNumberAt(file, at->run_start);
  if (!first_line.ok()) {
    return file + " line " + std::to_string(at->after + 1) + " counting from byte " +
           std::to_string(at->run_start) + " (" + first_line.status().message() + ")";
  }
  return file + " line " + std::to_string(*first_line + at->after);
}

Result<std::unique_ptr<Dataset>> Dataset::Open(const DatasetSpec& spec) {
  MRTRAIN_RETURN_IF_ERROR(CheckSpec(spec));
  MRTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> files, ResolveFiles(spec.path));
  switch (spec.format) {
    case DataFormat::kLibsvm:
      return OpenLibsvmDataset(spec, std::move(files));
    case DataFormat::kCsv:
      return OpenCsvDataset(spec, std::move(files));
    case DataFormat::kIdx:
      return OpenIdxDataset(spec, std::move(files));
    case DataFormat::kShards:
      return OpenShardDataset(spec, std::move(files));
    case DataFormat::kCriteo:
      return OpenCriteoDataset(spec, std::move(files));
  }
  return InvalidArgumentError(spec.path + ": unknown data format");
}

}  // namespace mrtrain::data
