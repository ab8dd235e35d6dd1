// Encoding and decoding of a shard's header (FORMAT.md, "shards").
#include <cstdio>
#include <cstring>

#include "engine/data/shard_format.h"

namespace mrtrain::data {
namespace {

class HeaderWriter {
 public:
  template <typename T>
  void Put(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(v));
  }
  void PutString(const std::string& s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads fields in order; the first that does not fit or is out of range sets the error, naming
// the byte offset in the file (the header starts after the preamble).
class HeaderReader {
 public:
  HeaderReader(std::string_view bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  template <typename T>
  bool Get(const char* what, T* v) {
    if (!Need(what, sizeof(T))) return false;
    std::memcpy(v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return true;
  }
  bool GetNonNegative(const char* what, int64_t* v) {
    const int64_t field_at = at_;
    if (!Get(what, v)) return false;
    if (*v < 0) return Fail(field_at, std::string(what) + " is negative");
    return true;
  }
  bool GetString(const char* what, std::string* s) {
    uint32_t n = 0;
    if (!Get(what, &n) || !Need(what, n)) return false;
    s->assign(bytes_.data() + at_, n);
    at_ += n;
    return true;
  }
  // A count of items of at least `min_item_bytes` each: never more than the bytes left hold.
  bool GetCount(const char* what, size_t min_item_bytes, uint32_t* n) {
    const int64_t field_at = at_;
    if (!Get(what, n)) return false;
    if (uint64_t{*n} * min_item_bytes > bytes_.size() - at_) {
      return Fail(field_at, std::string(what) + " count " + std::to_string(*n) +
                                " is more than the header holds");
    }
    return true;
  }
  bool Fail(int64_t at, const std::string& why) {
    if (status_.ok()) {
      status_ = CorruptionError(file_ + ": corrupt shard header at byte " +
                                std::to_string(kShardPreambleBytes + at) + ": " + why);
    }
    return false;
  }
  int64_t at() const { return at_; }
  size_t left() const { return bytes_.size() - at_; }
  const Status& status() const { return status_; }

 private:
  bool Need(const char* what, size_t n) {
    if (n <= bytes_.size() - at_) return true;
    return Fail(at_, std::string(what) + " runs past the header's end");
  }

  std::string_view bytes_;
  const std::string& file_;
  int64_t at_ = 0;
  Status status_;
};

bool DecodeShape(HeaderReader& r, ShardHeader* h) {
  uint8_t layout = 0;
  if (!r.GetNonNegative("partition", &h->partition) ||
      !r.GetNonNegative("num_partitions", &h->num_partitions) ||
      !r.GetNonNegative("num_rows", &h->num_rows) || !r.GetNonNegative("num_cols", &h->num_cols)) {
    return false;
  }
  const int64_t layout_at = r.at();
  if (!r.Get("layout", &layout)) return false;
  if (layout > 1) return r.Fail(layout_at, "layout " + std::to_string(layout) + " is not 0 or 1");
  h->layout = static_cast<ShardLayout>(layout);
  if (h->partition >= h->num_partitions) {
    return r.Fail(0, "partition " + std::to_string(h->partition) + " is not below " +
                         std::to_string(h->num_partitions));
  }
  return r.GetNonNegative("nnz", &h->nnz) &&
         r.GetNonNegative("skipped_records", &h->skipped_records);
}

bool DecodeSpec(HeaderReader& r, ShardHeader* h) {
  uint32_t n = 0;
  if (!r.GetCount("spec fields", 8, &n)) return false;
  h->spec.resize(n);
  for (auto& [key, value] : h->spec) {
    if (!r.GetString("spec key", &key) || !r.GetString("spec value", &value)) return false;
  }
  return true;
}

bool DecodeSources(HeaderReader& r, ShardHeader* h) {
  uint8_t unit = 0;
  uint32_t n = 0;
  const int64_t unit_at = r.at();
  if (!r.Get("source unit", &unit)) return false;
  if (unit > 1) return r.Fail(unit_at, "source unit " + std::to_string(unit) + " is not 0 or 1");
  h->sources.unit = unit == 0 ? RowSources::Unit::kLine : RowSources::Unit::kRecord;
  if (!r.GetCount("source files", 4, &n)) return false;
  h->sources.files.resize(n);
  for (std::string& f : h->sources.files) {
    if (!r.GetString("source file", &f)) return false;
  }
  if (!r.GetCount("row runs", 20, &n)) return false;
  h->sources.runs.resize(n);
  for (RowSources::Run& run : h->sources.runs) {
    const int64_t run_at = r.at();
    if (!r.Get("run", &run.first_row) || !r.Get("run", &run.start) || !r.Get("run", &run.file)) {
      return false;
    }
    if (run.file < 0 || static_cast<size_t>(run.file) >= h->sources.files.size()) {
      return r.Fail(run_at, "row run names source file " + std::to_string(run.file));
    }
  }
  return true;
}

bool DecodeSections(HeaderReader& r, ShardHeader* h) {
  uint32_t n = 0;
  if (!r.GetCount("sections", 20, &n)) return false;
  h->sections.resize(n);
  for (ShardSection& s : h->sections) {
    if (!r.GetNonNegative("section offset", &s.offset) ||
        !r.GetNonNegative("section length", &s.bytes) || !r.Get("section crc", &s.crc)) {
      return false;
    }
  }
  if (r.left() != 0)
    return r.Fail(r.at(), std::to_string(r.left()) + " bytes after the last field");
  return true;
}

}  // namespace

std::string DescribeSpecFields(const SpecFields& fields) {
  std::string text = "{";
  for (const auto& [key, value] : fields) {
    text += (text.size() > 1 ? ", " : "") + key + "=" + value;
  }
  return text + "}";
}

std::string ShardFileName(int64_t partition) {
  char name[32];
  std::snprintf(name, sizeof(name), "part-%05lld%s", static_cast<long long>(partition),
                kShardSuffix);
  return name;
}

std::vector<int64_t> SectionBytes(const ShardHeader& h) {
  // Callers check the shape against the file's length first, so these cannot overflow.
  const int64_t labels = h.num_rows * 4;
  if (h.layout == ShardLayout::kDense) return {labels, h.num_rows * h.num_cols * 4};
  return {labels, (h.num_rows + 1) * 8, h.nnz * 4, h.nnz * 4};
}

std::string EncodeShardHeader(const ShardHeader& h) {
  HeaderWriter w;
  w.Put<int64_t>(h.partition);
  w.Put<int64_t>(h.num_partitions);
  w.Put<int64_t>(h.num_rows);
  w.Put<int64_t>(h.num_cols);
  w.Put<uint8_t>(static_cast<uint8_t>(h.layout));
  w.Put<int64_t>(h.nnz);
  w.Put<int64_t>(h.skipped_records);
  w.Put<uint32_t>(static_cast<uint32_t>(h.skipped_samples.size()));
  for (const std::string& s : h.skipped_samples) w.PutString(s);
  w.Put<uint32_t>(static_cast<uint32_t>(h.spec.size()));
  for (const auto& [key, value] : h.spec) {
    w.PutString(key);
    w.PutString(value);
  }
  w.Put<uint8_t>(h.sources.unit == RowSources::Unit::kLine ? 0 : 1);
  w.Put<uint32_t>(static_cast<uint32_t>(h.sources.files.size()));
  for (const std::string& f : h.sources.files) w.PutString(f);
  w.Put<uint32_t>(static_cast<uint32_t>(h.sources.runs.size()));
  for (const RowSources::Run& run : h.sources.runs) {
    w.Put<int64_t>(run.first_row);
    w.Put<int64_t>(run.start);
    w.Put<int32_t>(run.file);
  }
  w.Put<uint32_t>(static_cast<uint32_t>(h.sections.size()));
  for (const ShardSection& s : h.sections) {
    w.Put<int64_t>(s.offset);
    w.Put<int64_t>(s.bytes);
    w.Put<uint32_t>(s.crc);
  }
  return w.Take();
}

Result<ShardHeader> DecodeShardHeader(std::string_view bytes, const std::string& file) {
  ShardHeader h;
  HeaderReader r(bytes, file);
  uint32_t samples = 0;
  bool ok = DecodeShape(r, &h) && r.GetCount("skipped samples", 4, &samples);
  if (ok) {
    h.skipped_samples.resize(samples);
    for (std::string& s : h.skipped_samples) ok = ok && r.GetString("skipped sample", &s);
  }
  ok = ok && DecodeSpec(r, &h) && DecodeSources(r, &h) && DecodeSections(r, &h);
  if (!ok) return r.status();
  return h;
}

}  // namespace mrtrain::data
