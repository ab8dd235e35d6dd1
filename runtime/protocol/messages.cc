#include "runtime/protocol/messages.h"

#include <cstdint>
#include <cstring>
#include <exception>
#include <streambuf>
#include <type_traits>
#include <utility>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/binary_object.hpp>

#include "engine/base/crc32c.h"
#include "shuffle/merge/tree_sum.h"

namespace mrtrain::runtime::msg {
namespace {

// No archive header (its signature and library version would make the bytes depend on the Boost
// release) and no locale facets: the payload is exactly the fields of FORMAT.md.
constexpr unsigned kArchiveFlags = boost::archive::no_header | boost::archive::no_codecvt;

// Appends everything written to it to a string (no copy out of an ostringstream at the end).
class StringSink : public std::streambuf {
 public:
  explicit StringSink(std::string* out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_->append(s, static_cast<size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof()))
      out_->push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }

 private:
  std::string* out_;
};

// Reads a string_view in place and knows how many bytes are left, so a size can be checked
// against the bytes that could possibly back it before anything is allocated.
class ViewSource : public std::streambuf {
 public:
  explicit ViewSource(std::string_view in) {
    // streambuf's get area is non-const, but nothing here writes through it.
    char* begin = const_cast<char*>(in.data());
    setg(begin, begin, begin + in.size());
  }
  uint64_t remaining() const { return static_cast<uint64_t>(egptr() - gptr()); }
  // The unread bytes, to copy a block out in place; Skip(n) then consumes them.
  const char* next() const { return gptr(); }
  void Skip(uint64_t n) { setg(eback(), gptr() + n, egptr()); }
};

std::string CapMessage(const char* message, const char* field, uint64_t n, uint64_t cap) {
  return std::string(message) + "." + field + " has " + std::to_string(n) +
         " entries, over the cap of " + std::to_string(cap);
}

// The two visitors a message's field list (Visit below) runs with. Writer saves fields through a
// binary_oarchive; Reader loads them through a binary_iarchive and checks every size. Blocks
// (strings, arrays of numbers) are a u64 count and then the elements as one binary object, never
// element by element. Both stop at the first error and keep it.
class Writer {
 public:
  Writer(std::string* out, const char* message)
      : sink_(out), ar_(sink_, kArchiveFlags), message_(message) {}

  template <typename T>
  void Scalar(const T& v) {
    static_assert(std::is_arithmetic_v<T>, "scalars are numbers");
    if (status_.ok()) ar_ << v;
  }
  template <typename E>
  void Enum(const E& e) {
    Scalar(static_cast<std::underlying_type_t<E>>(e));
  }
  void Text(const std::string& s, uint64_t cap, const char* field) {
    Block(s.data(), s.size(), 1, cap, field);
  }
  template <typename T>
  void Array(const std::vector<T>& v, uint64_t cap, const char* field) {
    static_assert(std::is_arithmetic_v<T>, "arrays are of numbers");
    if (tail_field_ && std::strcmp(field, tail_field_) == 0) {
      return Block(tail_data_, tail_count_, sizeof(T), cap, field);
    }
    Block(v.data(), v.size(), sizeof(T), cap, field);
  }
  void TextList(const std::vector<std::string>& v, uint64_t cap, uint64_t item_cap,
                const char* field) {
    if (v.size() > cap) return Fail(CapMessage(message_, field, v.size(), cap));
    Scalar(static_cast<uint64_t>(v.size()));
    for (const std::string& s : v) Text(s, item_cap, field);
  }
  void Fail(std::string why) {
    if (status_.ok()) status_ = InvalidArgumentError("cannot encode " + std::move(why));
  }
  const Status& status() const { return status_; }

  // Makes array `field` (the message's last) the tail: its count is written, its `count`
  // elements at `data` are not, and tail() says where they are. Used instead of the message's
  // own array of that name.
  void SetTail(const char* field, const void* data, uint64_t count) {
    tail_field_ = field;
    tail_data_ = data;
    tail_count_ = count;
  }
  std::string_view tail() const { return tail_; }

 private:
  void Block(const void* data, uint64_t count, size_t element_bytes, uint64_t cap,
             const char* field) {
    if (count > cap) return Fail(CapMessage(message_, field, count, cap));
    if (!tail_.empty()) return Fail(std::string(message_) + ": a field follows the tail");
    Scalar(count);
    if (count == 0 || !status_.ok()) return;
    if (tail_field_ && std::strcmp(field, tail_field_) == 0) {
      tail_ = std::string_view(static_cast<const char*>(data), count * element_bytes);
      return;
    }
    // binary_object wants a non-const pointer for both directions; saving only reads it.
    boost::serialization::binary_object block(const_cast<void*>(data), count * element_bytes);
    ar_ << block;
  }

  StringSink sink_;
  boost::archive::binary_oarchive ar_;
  const char* message_;
  Status status_;
  const char* tail_field_ = nullptr;
  const void* tail_data_ = nullptr;
  uint64_t tail_count_ = 0;
  std::string_view tail_;
};

class Reader {
 public:
  Reader(std::string_view in, const char* message)
      : source_(in), ar_(source_, kArchiveFlags), message_(message) {}

  template <typename T>
  void Scalar(T& v) {
    static_assert(std::is_arithmetic_v<T>, "scalars are numbers");
    if (status_.ok()) ar_ >> v;
  }
  template <typename E>
  void Enum(E& e) {
    std::underlying_type_t<E> raw{};
    Scalar(raw);
    e = static_cast<E>(raw);
  }
  void Text(std::string& s, uint64_t cap, const char* field) {
    uint64_t n = 0;
    if (!Count(1, cap, field, &n)) return;
    s.resize(n);
    Load(s.data(), n);
  }
  template <typename T>
  void Array(std::vector<T>& v, uint64_t cap, const char* field) {
    static_assert(std::is_arithmetic_v<T>, "arrays are of numbers");
    uint64_t n = 0;
    if (!Count(sizeof(T), cap, field, &n)) return;
    // The archive reads straight from our buffer, so an aligned block can be copied out in one
    // pass; resize-then-load would first zero every element (a shuffle run's floats: the
    // biggest cost of decoding).
    const char* at = source_.next();
    if (status_.ok() && reinterpret_cast<uintptr_t>(at) % alignof(T) == 0) {
      const T* first = reinterpret_cast<const T*>(at);
      v.assign(first, first + n);
      source_.Skip(n * sizeof(T));
      return;
    }
    v.resize(n);
    Load(v.data(), n * sizeof(T));
  }
  void TextList(std::vector<std::string>& v, uint64_t cap, uint64_t item_cap, const char* field) {
    uint64_t n = 0;
    // Each string needs at least its 8-byte count.
    if (!Count(sizeof(uint64_t), cap, field, &n)) return;
    v.resize(n);
    for (std::string& s : v) Text(s, item_cap, field);
  }
  void Fail(std::string why) {
    if (status_.ok()) status_ = CorruptionError("cannot decode " + std::move(why));
  }
  // Every byte must have been used.
  Status Finish() {
    if (status_.ok() && source_.remaining() != 0) {
      Fail(std::string(message_) + ": " + std::to_string(source_.remaining()) + " trailing bytes");
    }
    return status_;
  }

 private:
  // Reads a count and checks it against its cap and against the bytes left, before any
  // allocation sized by it.
  bool Count(size_t element_bytes, uint64_t cap, const char* field, uint64_t* n) {
    Scalar(*n);
    if (!status_.ok()) return false;
    if (*n > cap) {
      Fail(CapMessage(message_, field, *n, cap));
      return false;
    }
    if (*n > source_.remaining() / element_bytes) {
      Fail(std::string(message_) + "." + field + " claims " + std::to_string(*n) +
           " entries but only " + std::to_string(source_.remaining()) + " bytes are left");
      return false;
    }
    return true;
  }
  void Load(void* data, uint64_t bytes) {
    if (bytes == 0 || !status_.ok()) return;
    boost::serialization::binary_object block(data, bytes);
    ar_ >> block;
  }

  ViewSource source_;
  boost::archive::binary_iarchive ar_;
  const char* message_;
  Status status_;
};

// ---- Field lists: the order here is the wire order (FORMAT.md) ----

template <class Io>
void Visit(Io& io, Hello& m) {
  io.Text(m.worker_name, kMaxNameBytes, "worker_name");
  io.Scalar(m.slots);
  io.Text(m.data_address, kMaxNameBytes, "data_address");
}

template <class Io>
void Visit(Io& io, Welcome& m) {
  io.Scalar(m.worker_id);
  io.Scalar(m.heartbeat_interval_ms);
}

template <class Io>
void Visit(Io& io, Heartbeat& m) {
  io.Scalar(m.worker_id);
  io.Scalar(m.sequence);
  io.Scalar(m.running_tasks);
}

template <class Io>
void Visit(Io& io, RunMapTask& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.epoch);
  io.Scalar(m.round);
  io.Scalar(m.partition);
  io.Scalar(m.partition_count);
  io.Scalar(m.attempt);
  io.Scalar(m.step);
  io.Scalar(m.learning_rate);
}

template <class Io>
void Visit(Io& io, MapTaskDone& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.epoch);
  io.Scalar(m.round);
  io.Scalar(m.partition);
  io.Scalar(m.partition_count);
  io.Scalar(m.attempt);
  io.Scalar(m.loss_sum);
  io.Scalar(m.examples);
  io.Scalar(m.correct);
  io.Scalar(m.bytes_sent);
  io.Scalar(m.peak_rss_bytes);
}

template <class Io>
void Visit(Io& io, TaskFailed& m) {
  io.Scalar(m.job_id);
  io.Enum(m.kind);
  io.Scalar(m.epoch);
  io.Scalar(m.round);
  io.Scalar(m.partition);
  io.Scalar(m.partition_count);
  io.Scalar(m.shard);
  io.Scalar(m.attempt);
  io.Enum(m.set);
  io.Enum(m.code);
  io.Text(m.message, kMaxTextBytes, "message");
}

template <class Io>
void Visit(Io& io, ReduceRound& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.epoch);
  io.Scalar(m.round);
  io.Scalar(m.shard);
  io.Scalar(m.step);
  io.Scalar(m.learning_rate);
  io.Scalar(m.example_count);
}

template <class Io>
void Visit(Io& io, ShardCommitted& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.epoch);
  io.Scalar(m.round);
  io.Scalar(m.shard);
  io.Scalar(m.step);
}

template <class Io>
void Visit(Io& io, JobSpecText& m) {
  io.Scalar(m.job_id);
  io.Text(m.yaml, kMaxJobSpecBytes, "yaml");
  io.Text(m.source, kMaxNameBytes, "source");
  io.TextList(m.overrides, kMaxOverrides, kMaxNameBytes, "overrides");
  io.Text(m.working_dir, kMaxNameBytes, "working_dir");
  io.Scalar(m.resume);
  io.TextList(m.plugin_sha256, kMaxPlugins, 64, "plugin_sha256");
  io.TextList(m.plugin_bytes, kMaxPlugins, kMaxPluginBytes, "plugin_bytes");
}

template <class Io>
void Visit(Io& io, JobReady& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.phase);
  io.Scalar(m.train_partitions);
  io.Scalar(m.test_partitions);
  io.Scalar(m.validation_partitions);
  io.Scalar(m.placement);
}

template <class Io>
void Visit(Io& io, LoadPartition& m) {
  io.Scalar(m.job_id);
  io.Enum(m.set);
  io.Scalar(m.partition);
  io.Scalar(m.attempt);
}

template <class Io>
void Visit(Io& io, PartitionLoaded& m) {
  io.Scalar(m.job_id);
  io.Enum(m.set);
  io.Scalar(m.partition);
  io.Scalar(m.attempt);
  io.Scalar(m.rows);
  io.Scalar(m.num_cols);
  io.Scalar(m.is_sparse);
  io.Scalar(m.labels_integral);
  io.Scalar(m.max_label);
  io.Scalar(m.skipped_records);
  io.TextList(m.skipped_samples, kMaxSkippedSamples, kMaxTextBytes, "skipped_samples");
}

template <class Io>
void Visit(Io& io, StartTraining& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.num_features);
  io.Scalar(m.num_classes);
  io.Scalar(m.is_sparse);
  io.Scalar(m.resume_epochs);
  io.Scalar(m.step);
  io.Array(m.hosted_shards, kMaxShardsPerMessage, "hosted_shards");
  io.TextList(m.shard_addresses, kMaxShardsPerMessage, kMaxNameBytes, "shard_addresses");
  io.Scalar(m.placement);
}

template <class Io>
void Visit(Io& io, EvaluateTask& m) {
  io.Scalar(m.job_id);
  io.Enum(m.set);
  io.Scalar(m.partition);
  io.Scalar(m.attempt);
  io.Scalar(m.step);
}

template <class Io>
void Visit(Io& io, PredictTask& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.partition);
  io.Scalar(m.attempt);
  io.Scalar(m.first_row);
}

template <class Io>
void Visit(Io& io, PredictDone& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.partition);
  io.Scalar(m.attempt);
  io.Scalar(m.rows);
  io.Scalar(m.bytes);
  io.Scalar(m.crc32c);
  io.Scalar(m.correct);
  io.Scalar(m.squared_error);
  io.Scalar(m.skipped_records);
  io.Scalar(m.outputs);
  io.Scalar(m.classifier);
  io.Scalar(m.model_bytes);
  io.Scalar(m.model_crc32c);
}

template <class Io>
void Visit(Io& io, EvalDone& m) {
  io.Scalar(m.job_id);
  io.Enum(m.set);
  io.Scalar(m.partition);
  io.Scalar(m.attempt);
  io.Scalar(m.step);
  io.Scalar(m.loss_sum);
  io.Scalar(m.examples);
  io.Scalar(m.correct);
}

template <class Io>
void Visit(Io& io, SaveShard& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.shard);
  io.Scalar(m.epochs_done);
  io.Text(m.path, kMaxNameBytes, "path");
}

template <class Io>
void Visit(Io& io, ShardSaved& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.shard);
  io.Scalar(m.epochs_done);
  io.Scalar(m.bytes);
  io.Scalar(m.crc32c);
}

template <class Io>
void Visit(Io& io, EndJob& m) {
  io.Scalar(m.job_id);
}

template <class Io>
void Visit(Io& io, StatusRequest& m) {
  io.Scalar(m.unused);
}

template <class Io>
void Visit(Io& io, CancelJob& m) {
  io.Scalar(m.job_id);
}

template <class Io>
void Visit(Io& io, RoundProgress& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.epoch);
  io.Scalar(m.round);
  io.Scalar(m.rounds_per_epoch);
  io.Scalar(m.epochs);
  io.Scalar(m.elapsed_sec);
}

template <class Io>
void Visit(Io& io, CheckpointCommitted& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.epochs_done);
  io.Scalar(m.step);
}

template <class Io>
void Visit(Io& io, JobStatus& m) {
  io.Scalar(m.job_id);
  io.Enum(m.state);
  io.Text(m.json, kMaxTextBytes, "json");
}

template <class Io>
void Visit(Io& io, EpochReport& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.epoch);
  io.Text(m.json_line, kMaxTextBytes, "json_line");
}

template <class Io>
void Visit(Io& io, Shutdown& m) {
  io.Text(m.reason, kMaxTextBytes, "reason");
  io.Scalar(m.exit_code);
}

template <class Io>
void Visit(Io& io, PushRun& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.epoch);
  io.Scalar(m.round);
  io.Scalar(m.step);
  io.Scalar(m.partition);
  io.Scalar(m.partition_count);
  io.Scalar(m.shard);
  io.Scalar(m.attempt);
  io.Scalar(m.values_crc32c);
  io.Array(m.keys, kMaxKeysPerMessage, "keys");
  io.Array(m.offsets, kMaxKeysPerMessage + 1, "offsets");
  io.Array(m.values, kMaxValuesPerMessage, "values");
}

template <class Io>
void Visit(Io& io, PullParams& m) {
  io.Scalar(m.request_id);
  io.Scalar(m.job_id);
  io.Scalar(m.shard);
  io.Scalar(m.step);
  io.Array(m.keys, kMaxKeysPerMessage, "keys");
}

template <class Io>
void Visit(Io& io, ParamsReply& m) {
  io.Scalar(m.request_id);
  io.Scalar(m.step);
  io.Scalar(m.part);
  io.Scalar(m.parts);
  io.Text(m.error, kMaxTextBytes, "error");
  io.Array(m.keys, kMaxKeysPerMessage, "keys");
  io.Array(m.offsets, kMaxKeysPerMessage + 1, "offsets");
  io.Array(m.values, kMaxValuesPerMessage, "values");
}

template <class Io>
void Visit(Io& io, PushAck& m) {
  io.Scalar(m.job_id);
  io.Scalar(m.step);
  io.Scalar(m.partition);
  io.Scalar(m.partition_count);
  io.Scalar(m.shard);
  io.Scalar(m.attempt);
  io.Scalar(m.duplicate);
  io.Text(m.error, kMaxTextBytes, "error");
}

// ---- Invariants beyond the caps: empty when the message is sound ----

template <typename M>
std::string Problem(const M&) {
  return {};
}

std::string RunProblem(const std::vector<uint64_t>& keys, const std::vector<int64_t>& offsets,
                       uint64_t num_values) {
  if (offsets.size() != keys.size() + 1) {
    return "offsets has " + std::to_string(offsets.size()) + " entries for " +
           std::to_string(keys.size()) + " keys (want keys + 1)";
  }
  if (offsets.front() != 0) return "offsets[0] is " + std::to_string(offsets.front()) + ", not 0";
  for (size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i] < offsets[i - 1]) {
      return "offsets decrease at entry " + std::to_string(i);
    }
  }
  if (static_cast<uint64_t>(offsets.back()) != num_values) {
    return "offsets end at " + std::to_string(offsets.back()) + " but there are " +
           std::to_string(num_values) + " values";
  }
  return {};
}

// A map task's or run's partitions must be a node of the reduction tree (tree_sum.h); whether it
// lies within the job's partitions is for the receiver, which knows their count.
std::string NodeProblem(int64_t lo, int64_t count) {
  if (shuffle::IsAligned(shuffle::TreeNode{lo, count})) return {};
  return "partitions [" + std::to_string(lo) + ", +" + std::to_string(count) +
         ") are not a node of the reduction tree (want a power-of-two count and a start that is " +
         "a multiple of it)";
}

std::string Problem(const RunMapTask& m) { return NodeProblem(m.partition, m.partition_count); }
std::string Problem(const MapTaskDone& m) { return NodeProblem(m.partition, m.partition_count); }
std::string Problem(const PushRun& m) {
  if (std::string p = NodeProblem(m.partition, m.partition_count); !p.empty()) return p;
  return RunProblem(m.keys, m.offsets, m.values.size());
}
// A ParamsReply's invariants when `num_values` floats travel with it.
std::string ReplyProblem(const ParamsReply& m, uint64_t num_values) {
  if (m.parts < 1 || m.parts > kMaxReplyParts) {
    return "parts is " + std::to_string(m.parts) + ", not in [1, " +
           std::to_string(kMaxReplyParts) + "]";
  }
  if (m.part >= m.parts) {
    return "part " + std::to_string(m.part) + " of " + std::to_string(m.parts) + " parts";
  }
  if (!m.error.empty() && m.parts != 1)
    return "an error reply in " + std::to_string(m.parts) + " parts";
  return RunProblem(m.keys, m.offsets, num_values);
}
std::string Problem(const ParamsReply& m) { return ReplyProblem(m, m.values.size()); }

std::string SetProblem(DataSet set) {
  if (set > DataSet::kValidation)
    return "unknown data set " + std::to_string(static_cast<int>(set));
  return {};
}

std::string Problem(const TaskFailed& m) {
  if (m.kind > TaskKind::kPredict) {
    return "unknown task kind " + std::to_string(static_cast<int>(m.kind));
  }
  if (std::string p = SetProblem(m.set); !p.empty()) return p;
  if (m.kind == TaskKind::kMap) {
    if (std::string p = NodeProblem(m.partition, m.partition_count); !p.empty()) return p;
  }
  if (m.code <= StatusCode::kOk || m.code > StatusCode::kInternal) {
    return "status code " + std::to_string(static_cast<int>(m.code)) + " is not an error";
  }
  return {};
}

std::string Problem(const PushAck& m) {
  if (std::string p = NodeProblem(m.partition, m.partition_count); !p.empty()) return p;
  if (m.duplicate > 1) return "duplicate is " + std::to_string(m.duplicate) + ", not 0 or 1";
  return {};
}

std::string Problem(const JobStatus& m) {
  if (m.state > JobState::kFailed) {
    return "unknown job state " + std::to_string(static_cast<int>(m.state));
  }
  return {};
}

std::string Problem(const JobSpecText& m) {
  if (m.plugin_sha256.size() != m.plugin_bytes.size()) {
    return std::to_string(m.plugin_sha256.size()) + " plugin digests for " +
           std::to_string(m.plugin_bytes.size()) + " libraries";
  }
  return {};
}

std::string Problem(const LoadPartition& m) { return SetProblem(m.set); }
std::string Problem(const PartitionLoaded& m) { return SetProblem(m.set); }
std::string Problem(const EvaluateTask& m) { return SetProblem(m.set); }
std::string Problem(const EvalDone& m) { return SetProblem(m.set); }
std::string Problem(const PredictTask& m) {
  if (m.partition < 0 || m.first_row < 0) return "negative partition or first row";
  return {};
}
std::string Problem(const PredictDone& m) {
  if (m.partition < 0 || m.rows < 0) return "negative partition or rows";
  if (m.classifier > 1)
    return "classifier is " + std::to_string(m.classifier) + "; expected 0 or 1";
  if (m.outputs < 1) return "outputs is " + std::to_string(m.outputs) + "; expected at least 1";
  return {};
}

std::string Problem(const JobReady& m) {
  if (m.phase > JobReady::kTraining) return "unknown phase " + std::to_string(m.phase);
  return {};
}

// Encodes m into out->head; with `tail_values`, array "values" is those floats instead of
// m.values and they become out->tail (not copied). The caller has checked m's invariants.
template <typename M>
Status EncodeInto(const M& m, GatherPayload* out,
                  std::optional<std::pair<const float*, uint64_t>> tail_values = std::nullopt) {
  const std::string name = MessageTypeName(static_cast<uint16_t>(M::kType));
  try {
    Writer writer(&out->head, name.c_str());
    if (tail_values) writer.SetTail("values", tail_values->first, tail_values->second);
    // Visit serves both directions, so it takes a mutable message; through a Writer it only
    // reads (Boost's own save path casts away const the same way).
    Visit(writer, const_cast<M&>(m));
    MRTRAIN_RETURN_IF_ERROR(writer.status());
    out->tail = writer.tail();
  } catch (const std::exception& e) {
    return InternalError("cannot encode " + name + ": " + e.what());
  }
  return Status::Ok();
}

template <typename M>
Result<std::string> EncodeMessage(const M& m) {
  if (std::string problem = Problem(m); !problem.empty()) {
    return InvalidArgumentError("cannot encode " +
                                MessageTypeName(static_cast<uint16_t>(M::kType)) + ": " + problem);
  }
  GatherPayload out;
  MRTRAIN_RETURN_IF_ERROR(EncodeInto(m, &out));
  return std::move(out.head);
}

template <typename M>
Status DecodeMessage(std::string_view payload, M* m) {
  const std::string name = MessageTypeName(static_cast<uint16_t>(M::kType));
  M decoded;
  try {
    Reader reader(payload, name.c_str());
    Visit(reader, decoded);
    MRTRAIN_RETURN_IF_ERROR(reader.Finish());
  } catch (const boost::archive::archive_exception& e) {
    return CorruptionError("cannot decode " + name + " from " + std::to_string(payload.size()) +
                           " bytes: " + e.what());
  } catch (const std::exception& e) {
    return CorruptionError("cannot decode " + name + ": " + e.what());
  } catch (...) {
    return CorruptionError("cannot decode " + name + ": unknown exception");
  }
  if (std::string problem = Problem(decoded); !problem.empty()) {
    return CorruptionError("cannot decode " + name + ": " + problem);
  }
  *m = std::move(decoded);
  return Status::Ok();
}

}  // namespace

namespace {

template <typename M>
void SetRunOf(shuffle::Run run, M* msg) {
  msg->keys.resize(run.keys.size());
  for (size_t i = 0; i < run.keys.size(); ++i) msg->keys[i] = run.keys[i].packed();
  msg->offsets = std::move(run.offsets);
  msg->values = std::move(run.values);
}

template <typename M>
shuffle::Run TakeRunOf(M* msg) {
  shuffle::Run run;
  run.keys.resize(msg->keys.size());
  for (size_t i = 0; i < msg->keys.size(); ++i) run.keys[i] = ParamKey::FromPacked(msg->keys[i]);
  run.offsets = std::move(msg->offsets);
  run.values = std::move(msg->values);
  msg->keys.clear();
  msg->offsets.clear();
  msg->values.clear();
  return run;
}

}  // namespace

const char* DataSetName(DataSet set) {
  switch (set) {
    case DataSet::kTrain:
      return "train";
    case DataSet::kTest:
      return "test";
    case DataSet::kValidation:
      return "validation";
  }
  return "?";
}

void SetRun(shuffle::Run run, PushRun* msg) { SetRunOf(std::move(run), msg); }
void SetRun(shuffle::Run run, ParamsReply* msg) { SetRunOf(std::move(run), msg); }
shuffle::Run TakeRun(PushRun* msg) { return TakeRunOf(msg); }
shuffle::Run TakeRun(ParamsReply* msg) { return TakeRunOf(msg); }

std::vector<size_t> SplitParamsRun(const shuffle::Run& run, uint64_t max_values) {
  std::vector<size_t> bounds{0};
  const size_t n = run.keys.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t begin = bounds.back();
    const auto values = static_cast<uint64_t>(run.offsets[i + 1] - run.offsets[begin]);
    if (i > begin && (values > max_values || i - begin >= kReplyPartKeys)) bounds.push_back(i);
  }
  bounds.push_back(n);
  return bounds;
}

uint32_t ValuesCrc32c(std::string_view payload, const PushRun& push,
                      std::optional<uint32_t> payload_crc32c) {
  // The floats are the payload's last field.
  const size_t values_bytes = push.values.size() * sizeof(float);
  const size_t head = payload.size() - values_bytes;
  if (!payload_crc32c) return Crc32c(payload.data() + head, values_bytes);
  return *payload_crc32c ^ Crc32cCombine(Crc32c(payload.data(), head), 0, values_bytes);
}

Result<GatherPayload> EncodeGather(std::shared_ptr<const PushRun> m) {
  if (std::string problem = Problem(*m); !problem.empty()) {
    return InvalidArgumentError("cannot encode PushRun: " + problem);
  }
  GatherPayload out;
  MRTRAIN_RETURN_IF_ERROR(
      EncodeInto(*m, &out, std::make_pair(m->values.data(), uint64_t{m->values.size()})));
  out.tail_crc32c = m->values_crc32c;
  out.message = m;
  out.owner = std::move(m);
  return out;
}

Result<GatherPayload> EncodeReplyPart(const ParamsReply& reply,
                                      std::shared_ptr<const shuffle::Run> run, size_t begin,
                                      size_t end) {
  ParamsReply part;
  part.request_id = reply.request_id;
  part.step = reply.step;
  part.part = reply.part;
  part.parts = reply.parts;
  part.error = reply.error;
  const int64_t first = run->offsets[begin];
  part.keys.resize(end - begin);
  part.offsets.resize(end - begin + 1);
  for (size_t i = begin; i < end; ++i) part.keys[i - begin] = run->keys[i].packed();
  for (size_t i = begin; i <= end; ++i) part.offsets[i - begin] = run->offsets[i] - first;
  const auto count = static_cast<uint64_t>(run->offsets[end] - first);
  if (std::string problem = ReplyProblem(part, count); !problem.empty()) {
    return InvalidArgumentError("cannot encode ParamsReply: " + problem);
  }
  GatherPayload out;
  MRTRAIN_RETURN_IF_ERROR(
      EncodeInto(part, &out, std::make_pair(run->values.data() + first, count)));
  out.owner = std::move(run);
  return out;
}

Result<bool> AddReplyPart(ParamsReply part, std::optional<ParamsReply>* whole) {
  if (!part.error.empty()) {
    *whole = std::move(part);
    return true;
  }
  if (!*whole) {
    if (part.part != 0) {
      return CorruptionError("ParamsReply part " + std::to_string(part.part) + " of " +
                             std::to_string(part.parts) + " came first");
    }
    *whole = std::move(part);
  } else {
    ParamsReply& w = **whole;
    if (part.part != w.part + 1 || part.parts != w.parts || part.step != w.step ||
        part.request_id != w.request_id) {
      return CorruptionError("ParamsReply part " + std::to_string(part.part) + " of " +
                             std::to_string(part.parts) + " (step " + std::to_string(part.step) +
                             ") does not follow part " + std::to_string(w.part) + " of " +
                             std::to_string(w.parts) + " (step " + std::to_string(w.step) + ")");
    }
    const int64_t base = w.offsets.back();
    w.keys.insert(w.keys.end(), part.keys.begin(), part.keys.end());
    for (size_t i = 1; i < part.offsets.size(); ++i) w.offsets.push_back(base + part.offsets[i]);
    w.values.insert(w.values.end(), part.values.begin(), part.values.end());
    w.part = part.part;
  }
  return (*whole)->part + 1 == (*whole)->parts;
}

#define MRTRAIN_MESSAGE_CODEC(M)                                      \
  Result<std::string> Encode(const M& m) { return EncodeMessage(m); } \
  Status Decode(std::string_view payload, M* m) { return DecodeMessage(payload, m); }

MRTRAIN_MESSAGE_CODEC(Hello)
MRTRAIN_MESSAGE_CODEC(Welcome)
MRTRAIN_MESSAGE_CODEC(Heartbeat)
MRTRAIN_MESSAGE_CODEC(RunMapTask)
MRTRAIN_MESSAGE_CODEC(MapTaskDone)
MRTRAIN_MESSAGE_CODEC(TaskFailed)
MRTRAIN_MESSAGE_CODEC(ReduceRound)
MRTRAIN_MESSAGE_CODEC(ShardCommitted)
MRTRAIN_MESSAGE_CODEC(JobSpecText)
MRTRAIN_MESSAGE_CODEC(JobStatus)
MRTRAIN_MESSAGE_CODEC(EpochReport)
MRTRAIN_MESSAGE_CODEC(Shutdown)
MRTRAIN_MESSAGE_CODEC(PushRun)
MRTRAIN_MESSAGE_CODEC(PullParams)
MRTRAIN_MESSAGE_CODEC(ParamsReply)
MRTRAIN_MESSAGE_CODEC(PushAck)
MRTRAIN_MESSAGE_CODEC(JobReady)
MRTRAIN_MESSAGE_CODEC(LoadPartition)
MRTRAIN_MESSAGE_CODEC(PartitionLoaded)
MRTRAIN_MESSAGE_CODEC(StartTraining)
MRTRAIN_MESSAGE_CODEC(EvaluateTask)
MRTRAIN_MESSAGE_CODEC(EvalDone)
MRTRAIN_MESSAGE_CODEC(PredictTask)
MRTRAIN_MESSAGE_CODEC(PredictDone)
MRTRAIN_MESSAGE_CODEC(SaveShard)
MRTRAIN_MESSAGE_CODEC(ShardSaved)
MRTRAIN_MESSAGE_CODEC(EndJob)
MRTRAIN_MESSAGE_CODEC(StatusRequest)
MRTRAIN_MESSAGE_CODEC(CancelJob)
MRTRAIN_MESSAGE_CODEC(RoundProgress)
MRTRAIN_MESSAGE_CODEC(CheckpointCommitted)

#undef MRTRAIN_MESSAGE_CODEC

}  // namespace mrtrain::runtime::msg
