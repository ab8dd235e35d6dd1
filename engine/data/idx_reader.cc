#include "engine/data/idx_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "engine/base/check.h"
#include "engine/data/byte_source.h"
#include "engine/data/stream_cache.h"

namespace mrtrain::data {
namespace {

constexpr uint8_t kTypeUbyte = 0x08;
constexpr uint8_t kTypeFloat = 0x0D;
// Bytes converted per read, so a partition never holds its raw bytes and its floats at once.
constexpr size_t kChunkBytes = 1 << 20;
// Parked gzip streams: images and labels for two loaders in flight.
constexpr size_t kParkedStreams = 4;
// Bounds the size of one record, so products of untrusted dimensions cannot overflow.
constexpr int64_t kMaxRecordValues = int64_t{1} << 31;
// Bounds the data of a file (count < 2^32 records of < 2^33 bytes could pass 2^63), so that
// offsets and sizes computed from the header fit in int64_t.
constexpr int64_t kMaxDataBytes = int64_t{1} << 62;
// Deflate cannot expand data by more than about 1032:1, so a gzip file claiming more data than
// that over its compressed size is damaged, and its claim must not size an allocation.
constexpr int64_t kMaxGzipExpansion = 1032;

uint32_t LoadBigEndian32(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", v);
  return buf;
}

struct IdxHeader {
  std::string path;
  uint8_t type = 0;
  int64_t count = 0;          // dims[0]
  int64_t record_values = 1;  // product of the other dims
  int64_t data_offset = 0;    // bytes before the first record

  int64_t value_bytes() const { return type == kTypeFloat ? 4 : 1; }
  int64_t record_bytes() const { return record_values * value_bytes(); }
};

// Reads and checks the header of an images (is_labels false) or labels file.
Result<IdxHeader> ReadHeader(const std::string& path, bool is_labels) {
  MRTRAIN_ASSIGN_OR_RETURN(auto source, ByteSource::Open(path));
  const std::string expected = is_labels ? "expected magic 0x00000801 (or 0x00000D01 for float32)"
                                         : "expected magic 0x00000803 (type 0x08 or 0x0D, at "
                                           "least 2 dimensions)";
  unsigned char magic[4];
  MRTRAIN_ASSIGN_OR_RETURN(size_t got, source->ReadFully(reinterpret_cast<char*>(magic), 4));
  if (got < 4) {
    return CorruptionError(path + ": " + expected + ", got a " + std::to_string(got) +
                           "-byte file");
  }
  IdxHeader header;
  header.path = path;
  header.type = magic[2];
  const int ndims = magic[3];
  const bool type_ok = header.type == kTypeUbyte || header.type == kTypeFloat;
  const bool dims_ok = is_labels ? ndims == 1 : ndims >= 2;
  if (magic[0] != 0 || magic[1] != 0 || !type_ok || !dims_ok) {
    return CorruptionError(path + ": " + expected + ", got " + Hex32(LoadBigEndian32(magic)));
  }
  std::vector<unsigned char> dims(4 * ndims);
  MRTRAIN_ASSIGN_OR_RETURN(got,
                           source->ReadFully(reinterpret_cast<char*>(dims.data()), dims.size()));
  if (got < dims.size()) {
    return CorruptionError(path + ": truncated header: expected " + std::to_string(ndims) +
                           " dimensions");
  }
  header.count = LoadBigEndian32(dims.data());
  for (int d = 1; d < ndims; ++d) {
    const uint32_t dim = LoadBigEndian32(dims.data() + 4 * d);
    if (dim == 0) return CorruptionError(path + ": dimension " + std::to_string(d) + " is 0");
    header.record_values *= dim;
    if (header.record_values > kMaxRecordValues) {
      return CorruptionError(path + ": records of more than 2^31 values are not supported");
    }
  }
  header.data_offset = 4 + 4 * ndims;
  if (header.count > kMaxDataBytes / header.record_bytes()) {
    return CorruptionError(path + ": " + std::to_string(header.count) + " records of " +
                           std::to_string(header.record_bytes()) +
                           " bytes are more than 2^62 bytes");
  }
  return header;
}

// LoadPartition allocates a partition's floats before reading them, so the header's claim is
// checked against the file first. A plain file must have exactly the size the header gives. A
// gzip file's length is known only after decompressing it (LoadPartition catches short ones),
// so its claim is only bounded by what its compressed size can hold: a damaged header then
// costs at most a few thousand times the file's size, never what the header says.
Status CheckSize(const IdxHeader& h) {
  MRTRAIN_ASSIGN_OR_RETURN(int64_t size, FileSize(h.path));
  const int64_t expected = h.data_offset + h.count * h.record_bytes();
  if (IsGzipPath(h.path)) {
    if (expected / kMaxGzipExpansion <= size) return Status::Ok();
    return CorruptionError(h.path + ": the header gives " + std::to_string(h.count) +
                           " records of " + std::to_string(h.record_bytes()) +
                           " bytes, more than a gzip file of " + std::to_string(size) +
                           " bytes can hold");
  }
  if (size == expected) return Status::Ok();
  std::string message = h.path + ": expected " + std::to_string(expected) + " bytes for " +
                        std::to_string(h.count) + " records of " +
                        std::to_string(h.record_bytes()) + " bytes, got " + std::to_string(size);
  if (size < expected && h.record_bytes() > 0) {
    const int64_t whole = std::max<int64_t>(0, size - h.data_offset) / h.record_bytes();
    message += ": truncated at record index " + std::to_string(whole);
  }
  return CorruptionError(message);
}

// The largest partition's rows are allocated at once, so their decoded size is checked against
// the budget when the dataset opens, from the header alone.
Status CheckBudget(const DatasetSpec& spec, const IdxHeader& images) {
  const int64_t rows = (images.count + spec.num_partitions - 1) / spec.num_partitions;
  // One float per value and one per label; 128 bits, as rows * values can pass 2^63.
  const unsigned __int128 bytes =
      static_cast<unsigned __int128>(rows) * (images.record_values + 1) * sizeof(float);
  if (bytes <= static_cast<unsigned __int128>(DecodedBudgetBytes(spec))) return Status::Ok();
  return InvalidArgumentError(
      images.path + ": " + std::to_string(images.count) + " records of " +
      std::to_string(images.record_values) + " values in " + std::to_string(spec.num_partitions) +
      " partition(s) take " + std::to_string(static_cast<int64_t>(bytes >> 20)) +
      " MiB per partition once decoded, over max_decoded_mb (" +
      std::to_string(spec.max_decoded_mb) + " MiB); use more partitions or raise max_decoded_mb");
}

class IdxDataset : public Dataset {
 public:
  IdxDataset(DatasetSpec spec, std::vector<std::string> files, IdxHeader images, IdxHeader labels)
      : Dataset(std::move(spec), std::move(files)),
        images_(std::move(images)),
        labels_(std::move(labels)),
        streams_(kParkedStreams) {
    const double default_scale = images_.type == kTypeUbyte ? 1.0 / 255 : 1.0;
    scale_ = this->spec().scale != 0 ? this->spec().scale : default_scale;
  }

  Result<PartitionData> LoadPartition(int64_t p) const override {
    const auto [first, last] = Range(p);
    PartitionData out;
    out.num_rows = last - first;
    out.num_cols = images_.record_values;
    out.dense.resize(out.num_rows * out.num_cols);
    out.labels.resize(out.num_rows);
    MRTRAIN_RETURN_IF_ERROR(ReadValues(images_, first, last, scale_, out.dense.data()));
    MRTRAIN_RETURN_IF_ERROR(ReadValues(labels_, first, last, 1.0, out.labels.data()));
    out.sources.unit = RowSources::Unit::kRecord;
    out.sources.files = {images_.path};
    MRTRAIN_RETURN_IF_ERROR(DropBadRecords(first, &out));
    return out;
  }

  std::string DescribePartition(int64_t p) const override {
    const auto [first, last] = Range(p);
    return images_.path + " records [" + std::to_string(first) + ", " + std::to_string(last) + ")";
  }

 private:
  std::pair<int64_t, int64_t> Range(int64_t p) const {
    MRTRAIN_DCHECK(p >= 0 && p < num_partitions());
    // 128 bits: count * p can pass 2^63 for a file of 2^32 records.
    const unsigned __int128 n = images_.count;
    const int64_t parts = num_partitions();
    return {static_cast<int64_t>(n * p / parts), static_cast<int64_t>(n * (p + 1) / parts)};
  }

  // Reads records [first, last) of a file as floats times `scale` into dst.
  Status ReadValues(const IdxHeader& h, int64_t first, int64_t last, double scale,
                    float* dst) const {
    MRTRAIN_ASSIGN_OR_RETURN(auto source,
                             streams_.Open(h.path, h.data_offset + first * h.record_bytes()));
    // No more than the partition needs: a small one should not cost a whole chunk.
    const int64_t chunk_records = std::min(
        std::max<int64_t>(1, static_cast<int64_t>(kChunkBytes) / h.record_bytes()), last - first);
    std::vector<unsigned char> raw(chunk_records * h.record_bytes());
    for (int64_t r = first; r < last; r += chunk_records) {
      const int64_t n = std::min(chunk_records, last - r);
      const size_t want = static_cast<size_t>(n * h.record_bytes());
      MRTRAIN_ASSIGN_OR_RETURN(size_t got,
                               source->ReadFully(reinterpret_cast<char*>(raw.data()), want));
      if (got < want) return Truncated(h, r + static_cast<int64_t>(got) / h.record_bytes());
      Convert(h.type, raw.data(), n * h.record_values, scale, dst + (r - first) * h.record_values);
    }
    if (last < h.count) {
      streams_.Park(h.data_offset + last * h.record_bytes(), std::move(source));
      return Status::Ok();
    }
    // Plain files had their size checked at Open; a gzip file's is known only now.
    char extra;
    MRTRAIN_ASSIGN_OR_RETURN(size_t more, source->Read(&extra, 1));
    if (more > 0) {
      return CorruptionError(h.path + ": data after the last record (record index " +
                             std::to_string(h.count) + ")");
    }
    return Status::Ok();
  }

  static void Convert(uint8_t type, const unsigned char* raw, int64_t n, double scale, float* dst) {
    if (type == kTypeUbyte) {
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(raw[i] * scale);
      return;
    }
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t bits = LoadBigEndian32(raw + 4 * i);
      float value;
      std::memcpy(&value, &bits, sizeof(value));
      dst[i] = static_cast<float>(value * scale);
    }
  }

  // Why record `index` (row r of *out) is bad: a value that is not finite (a float file can hold
  // NaN or inf, and a large scale can overflow) or a label the model cannot use. Ok if neither.
  Status RecordProblem(const PartitionData& out, int64_t r, int64_t index) const {
    const float* row = out.dense.data() + r * out.num_cols;
    for (int64_t c = 0; c < out.num_cols; ++c) {
      if (!std::isfinite(row[c])) {
        return CorruptionError(images_.path + " record index " + std::to_string(index) +
                               ": value " + std::to_string(c) + " is not a finite number");
      }
    }
    const float label = out.labels[r];
    Status status = std::isfinite(label) ? CheckLabel(spec(), label)
                                         : CorruptionError("label is not a finite number");
    return status.WithContext(labels_.path + " record index " + std::to_string(index));
  }

  // Applies the bad-record policy to the records [first, first + num_rows) in *out: fails on the
  // first bad one, or drops bad ones (counted, the first few reasons kept) and starts a new run
  // of sources after each.
  Status DropBadRecords(int64_t first, PartitionData* out) const {
    constexpr size_t kMaxSkippedSamples = 5;
    const int64_t width = out->num_cols;
    int64_t kept = 0;
    bool in_run = false;
    for (int64_t r = 0; r < out->num_rows; ++r) {
      Status problem = RecordProblem(*out, r, first + r);
      if (!problem.ok()) {
        if (spec().on_bad_record != BadRecordPolicy::kSkip) return problem;
        ++out->skipped_records;
        if (out->skipped_samples.size() < kMaxSkippedSamples) {
          out->skipped_samples.push_back(problem.message());
        }
        in_run = false;
        continue;
      }
      if (!in_run) out->sources.runs.push_back({kept, first + r, 0});
      in_run = true;
      if (kept != r) {
        std::copy_n(out->dense.begin() + r * width, width, out->dense.begin() + kept * width);
        out->labels[kept] = out->labels[r];
      }
      ++kept;
    }
    out->num_rows = kept;
    out->dense.resize(kept * width);
    out->labels.resize(kept);
    if (out->skipped_records > 0) {
      out->dense.shrink_to_fit();
      out->labels.shrink_to_fit();
    }
    return Status::Ok();
  }

  static Status Truncated(const IdxHeader& h, int64_t record) {
    return CorruptionError(h.path + ": truncated at record index " + std::to_string(record) +
                           " of " + std::to_string(h.count) + ": expected " +
                           std::to_string(h.record_bytes()) + " bytes per record");
  }

  // constant after construction
  IdxHeader images_;
  IdxHeader labels_;
  double scale_ = 1;

  mutable StreamCache streams_;  // thread-safe itself
};

}  // namespace

Result<std::unique_ptr<Dataset>> OpenIdxDataset(const DatasetSpec& spec,
                                                std::vector<std::string> files) {
  if (files.size() != 1) {
    return InvalidArgumentError("idx: path '" + spec.path + "' must name one images file, got " +
                                std::to_string(files.size()));
  }
  if (spec.labels_path.empty()) {
    return InvalidArgumentError("idx: labels_path is required for images " + files[0]);
  }
  MRTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> label_files, ResolveFiles(spec.labels_path));
  if (label_files.size() != 1) {
    return InvalidArgumentError("idx: labels_path '" + spec.labels_path +
                                "' must name one file, got " + std::to_string(label_files.size()));
  }
  MRTRAIN_ASSIGN_OR_RETURN(IdxHeader images, ReadHeader(files[0], false));
  MRTRAIN_ASSIGN_OR_RETURN(IdxHeader labels, ReadHeader(label_files[0], true));
  if (labels.count != images.count) {
    return InvalidArgumentError(labels.path + " has " + std::to_string(labels.count) +
                                " labels but " + images.path + " has " +
                                std::to_string(images.count) + " records");
  }
  if (spec.num_partitions > images.count) {
    return InvalidArgumentError("idx: " + std::to_string(spec.num_partitions) + " partitions for " +
                                std::to_string(images.count) + " records in " + images.path);
  }
  MRTRAIN_RETURN_IF_ERROR(CheckSize(images));
  MRTRAIN_RETURN_IF_ERROR(CheckSize(labels));
  MRTRAIN_RETURN_IF_ERROR(CheckBudget(spec, images));
  return std::unique_ptr<Dataset>(
      std::make_unique<IdxDataset>(spec, std::move(files), std::move(images), std::move(labels)));
}

}  // namespace mrtrain::data
