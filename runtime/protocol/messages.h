#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/status.h"
#include "runtime/protocol/gather_payload.h"
#include "runtime/protocol/protocol_constants.h"
#include "shuffle/buffer/run.h"

// The messages of the wire protocol after the handshake: plain structs (no pointers, no
// polymorphism), each with its MessageType as kType. Encode/Decode turn one into a frame payload
// with Boost.Serialization binary archives, which stay inside messages.cc (FORMAT.md has the
// layout).
//
//   Result<std::string> Encode(const M&)  kInvalidArgument when a field breaks a cap or an
//                                         invariant the peer would reject.
//   Status Decode(payload, M*)            kCorruption for truncated, trailing or malformed bytes,
//                                         a size over its cap (checked before allocating) or a
//                                         broken invariant (a run's offsets). Never throws.
//
// Decode only what passed the frame checks from an authenticated peer (DESIGN.md: Boost
// archives are not hardened against hostile input; the caps and checks here are a second wall).
// The structs live in `msg` because their natural names (EpochReport, JobStatus) are taken in
// mrtrain::runtime by the types they report.
namespace mrtrain::runtime::msg {

// ---- Control plane: worker <-> master ----

// worker -> master, first message after the handshake.
struct Hello {
  static constexpr MessageType kType = MessageType::kHello;
  std::string worker_name;   // for logs and the status page, e.g. "host:pid" (<= kMaxNameBytes)
  uint32_t slots = 0;        // map tasks the worker runs at once
  std::string data_address;  // host:port of its data-plane listener (shuffle pushes, pulls)
};

// master -> worker: registration accepted.
struct Welcome {
  static constexpr MessageType kType = MessageType::kWelcome;
  uint32_t worker_id = 0;             // the worker's id for the life of the master
  int64_t heartbeat_interval_ms = 0;  // how often the master expects a Heartbeat
};

// worker -> master, every heartbeat_interval_ms.
struct Heartbeat {
  static constexpr MessageType kType = MessageType::kHeartbeat;
  uint32_t worker_id = 0;
  uint64_t sequence = 0;  // increases by one per heartbeat of this worker
  uint32_t running_tasks = 0;
};

// master -> worker: run one attempt of one map task at the parameters of `step`. The task
// covers the partitions of one node of the reduction tree (shuffle/merge/tree_sum.h):
// [partition, partition + partition_count) clipped at the job's partition count, with
// partition_count a power of two and partition a multiple of it (checked on decode).
struct RunMapTask {
  static constexpr MessageType kType = MessageType::kRunMapTask;
  uint64_t job_id = 0;
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t partition = 0;  // the node's first partition
  int32_t attempt = 0;
  int64_t step = 0;  // the parameters to pull are those after `step - 1` updates
  double learning_rate = 0;
  int64_t partition_count = 1;  // the node's size
};

// worker -> master: the task's output has been pushed to every reducer shard.
struct MapTaskDone {
  static constexpr MessageType kType = MessageType::kMapTaskDone;
  uint64_t job_id = 0;
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t partition = 0;  // the task's node, as in RunMapTask
  int32_t attempt = 0;
  // The node's statistics, its partitions' summed in tree order.
  double loss_sum = 0;
  int64_t examples = 0;
  int64_t correct = 0;
  int64_t bytes_sent = 0;  // payload bytes of the PushRun messages the task sent
  // The worker process's peak resident set size in bytes during the job so far (VmHWM when
  // sent; see engine/base/peak_rss.h), 0 when unknown. The master reports it at epoch ends.
  int64_t peak_rss_bytes = 0;
  int64_t partition_count = 1;
};

// What a task of the master's is about; TaskFailed says which kind failed.
enum class TaskKind : uint8_t {
  kMap = 0,       // a map task (partition)
  kReduce = 1,    // a reducer shard's update (shard)
  kLoad = 2,      // loading a partition into a worker's cache (set, partition)
  kEvaluate = 3,  // evaluating a held-out partition (set, partition)
  kSetup = 4,     // setting a job up on a worker (parsing, plugins, datasets, shards)
  kSave = 5,      // writing a reducer shard's checkpoint file (shard)
  kPredict = 6,   // scoring a partition of a predict job into its part file (partition)
};

// The dataset a load or evaluation task reads.
enum class DataSet : uint8_t { kTrain = 0, kTest = 1, kValidation = 2 };
// "train", "test", "validation": the spec's key under `data`.
const char* DataSetName(DataSet set);

// worker -> master: one attempt of a task failed; the master retries it or fails the job.
struct TaskFailed {
  static constexpr MessageType kType = MessageType::kTaskFailed;
  uint64_t job_id = 0;
  TaskKind kind = TaskKind::kMap;
  int64_t epoch = 0;
  int64_t round = 0;       // map tasks; evaluate tasks: their step; setup: the placement
  int64_t partition = -1;  // map tasks (their node's first partition), load and evaluate tasks
  int64_t shard = -1;      // reduce tasks
  int32_t attempt = 0;
  DataSet set = DataSet::kTrain;            // load and evaluate tasks
  StatusCode code = StatusCode::kInternal;  // never kOk
  std::string message;                      // <= kMaxTextBytes
  int64_t partition_count = 1;              // map tasks: their node's size
};

// master -> each reducer shard host: every map output of the round is in; sum and update.
struct ReduceRound {
  static constexpr MessageType kType = MessageType::kReduceRound;
  uint64_t job_id = 0;
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t shard = 0;
  int64_t step = 0;  // the update this round makes (1-based)
  double learning_rate = 0;
  int64_t example_count = 0;  // examples of the round, for averaging gradients
};

// reducer shard host -> master: the shard holds the parameters after `step`.
struct ShardCommitted {
  static constexpr MessageType kType = MessageType::kShardCommitted;
  uint64_t job_id = 0;
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t shard = 0;
  int64_t step = 0;
};

// submit client -> master (job_id 0: the master assigns one), master -> workers. Every process
// parses the same text with the same overrides, and resolves relative paths against the
// submitter's working directory, so all of them see one spec.
struct JobSpecText {
  static constexpr MessageType kType = MessageType::kJobSpecText;
  uint64_t job_id = 0;
  std::string yaml;                    // the job spec file's text (<= kMaxJobSpecBytes)
  std::string source;                  // the file's name, for error messages (<= kMaxNameBytes)
  std::vector<std::string> overrides;  // "key.path=value" (<= kMaxOverrides, each <= kMaxNameBytes)
  std::string working_dir;             // absolute (<= kMaxNameBytes)
  uint8_t resume = 0;                  // 1: continue from the newest valid checkpoint
  // The spec's plugin libraries, shipped (runtime/job/plugin_shipping.h): both empty, or one
  // entry per `plugins` path (<= kMaxPlugins, each library <= kMaxPluginBytes).
  std::vector<std::string> plugin_sha256;
  std::vector<std::string> plugin_bytes;
};

// worker -> master: the worker has done what the master asked of it for a job: parsed the spec
// and opened the datasets (kSpec), or built the model and loaded its reducer shards (kTraining).
struct JobReady {
  static constexpr MessageType kType = MessageType::kJobReady;
  enum Phase : uint8_t { kSpec = 0, kTraining = 1 };
  uint64_t job_id = 0;
  uint8_t phase = kSpec;
  // kSpec: the partition counts of the datasets as opened (0 for a set the job lacks).
  int64_t train_partitions = 0;
  int64_t test_partitions = 0;
  int64_t validation_partitions = 0;
  uint64_t placement = 0;  // kTraining: the StartTraining's, so a late answer to an older one
                           // does not count for the newer
};

// master -> worker: read one partition into the worker's cache (it stays there for the job, and
// the partition's map tasks follow it) and describe it.
struct LoadPartition {
  static constexpr MessageType kType = MessageType::kLoadPartition;
  uint64_t job_id = 0;
  DataSet set = DataSet::kTrain;
  int64_t partition = 0;
  int32_t attempt = 0;
};

// worker -> master: what the master needs of a loaded partition to fix the data's shape.
struct PartitionLoaded {
  static constexpr MessageType kType = MessageType::kPartitionLoaded;
  uint64_t job_id = 0;
  DataSet set = DataSet::kTrain;
  int64_t partition = 0;
  int32_t attempt = 0;
  int64_t rows = 0;
  int64_t num_cols = 0;
  uint8_t is_sparse = 0;
  uint8_t labels_integral = 1;  // every label a non-negative whole number
  float max_label = -1;         // -1 for no rows
  int64_t skipped_records = 0;
  std::vector<std::string> skipped_samples;  // <= kMaxSkippedSamples, each <= kMaxTextBytes
};

// master -> every worker of a job: the data's shape (so every worker builds the same model), the
// reducer shards this worker hosts, and where every shard lives.
struct StartTraining {
  static constexpr MessageType kType = MessageType::kStartTraining;
  uint64_t job_id = 0;
  int64_t num_features = 0;
  int64_t num_classes = 0;
  uint8_t is_sparse = 0;
  int64_t resume_epochs = 0;           // > 0: hosts load their shards from that epoch's checkpoint
  int64_t step = 0;                    // updates applied before the first round
  std::vector<int64_t> hosted_shards;  // <= kMaxShardsPerMessage
  std::vector<std::string> shard_addresses;  // [s]: data address of shard s's host
  // Counts the job's placements (a recovery places the shards again); echoed by the JobReady
  // or TaskFailed (in `round`) that answers this message.
  uint64_t placement = 0;
};

// master -> worker: evaluate a held-out partition at the parameters after `step` updates.
struct EvaluateTask {
  static constexpr MessageType kType = MessageType::kEvaluateTask;
  uint64_t job_id = 0;
  DataSet set = DataSet::kTest;
  int64_t partition = 0;
  int32_t attempt = 0;
  int64_t step = 0;
};

// master -> worker, of a predict job (JobSpec::predict_model): score data.train's `partition`
// with the job's model into its part file under output.dir (runtime/predict/prediction_parts.h),
// numbering its rows from `first_row`.
struct PredictTask {
  static constexpr MessageType kType = MessageType::kPredictTask;
  uint64_t job_id = 0;
  int64_t partition = 0;
  int32_t attempt = 0;
  int64_t first_row = 0;
};

// worker -> master: the part file is written (atomically); what the manifest records of it.
struct PredictDone {
  static constexpr MessageType kType = MessageType::kPredictDone;
  uint64_t job_id = 0;
  int64_t partition = 0;
  int32_t attempt = 0;
  int64_t rows = 0;
  uint64_t bytes = 0;  // of the part file
  uint32_t crc32c = 0;
  int64_t correct = 0;
  double squared_error = 0;
  int64_t skipped_records = 0;
  int32_t outputs = 0;       // scores per row
  uint8_t classifier = 0;    // 1: the model predicts classes (models::ReportsAccuracy)
  uint64_t model_bytes = 0;  // the model file the worker read: its size and CRC32C
  uint32_t model_crc32c = 0;
};

// worker -> master.
struct EvalDone {
  static constexpr MessageType kType = MessageType::kEvalDone;
  uint64_t job_id = 0;
  DataSet set = DataSet::kTest;
  int64_t partition = 0;
  int32_t attempt = 0;
  int64_t step = 0;  // the task's: a late result of an earlier evaluation is told apart
  double loss_sum = 0;
  int64_t examples = 0;
  int64_t correct = 0;
};

// master -> reducer shard host: write the shard's parameters and slots to `path` (the job's
// checkpoint directory, which every host and the master see).
struct SaveShard {
  static constexpr MessageType kType = MessageType::kSaveShard;
  uint64_t job_id = 0;
  int64_t shard = 0;
  int64_t epochs_done = 0;
  std::string path;  // <= kMaxNameBytes
};

// reducer shard host -> master: the file is durable; the master records it in the manifest.
struct ShardSaved {
  static constexpr MessageType kType = MessageType::kShardSaved;
  uint64_t job_id = 0;
  int64_t shard = 0;
  int64_t epochs_done = 0;
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
};

// master -> workers: the checkpoint after `epochs_done` epochs (`step` updates) is committed.
// A recovery never goes back past it, so map output kept for steps up to `step` is dropped.
struct CheckpointCommitted {
  static constexpr MessageType kType = MessageType::kCheckpointCommitted;
  uint64_t job_id = 0;
  int64_t epochs_done = 0;
  int64_t step = 0;
};

// master -> workers: the job is over; drop its state (caches, shards, plugins).
struct EndJob {
  static constexpr MessageType kType = MessageType::kEndJob;
  uint64_t job_id = 0;
};

// status client -> master; the master replies with one JobStatus (job_id 0) whose json lists
// workers and jobs.
struct StatusRequest {
  static constexpr MessageType kType = MessageType::kStatusRequest;
  uint8_t unused = 0;
};

// submit client -> master: cancel the job (the client's Ctrl-C).
struct CancelJob {
  static constexpr MessageType kType = MessageType::kCancelJob;
  uint64_t job_id = 0;
};

// master -> submit client: a round finished (drives the progress bar).
struct RoundProgress {
  static constexpr MessageType kType = MessageType::kRoundProgress;
  uint64_t job_id = 0;
  int64_t epoch = 0;  // 0-based
  int64_t round = 0;  // 0-based
  int64_t rounds_per_epoch = 0;
  int64_t epochs = 0;
  double elapsed_sec = 0;
};

enum class JobState : uint8_t { kQueued = 0, kRunning = 1, kSucceeded = 2, kFailed = 3 };

// master -> submit client.
struct JobStatus {
  static constexpr MessageType kType = MessageType::kJobStatus;
  uint64_t job_id = 0;
  JobState state = JobState::kQueued;
  std::string json;  // one JSON object with the details (<= kMaxTextBytes)
};

// master -> submit client: one epoch's metrics, the JSON line the master also logs.
struct EpochReport {
  static constexpr MessageType kType = MessageType::kEpochReport;
  uint64_t job_id = 0;
  int64_t epoch = 0;
  std::string json_line;  // <= kMaxTextBytes
};

// Either way: the sender is going away (or wants the receiver to); close after reading.
struct Shutdown {
  static constexpr MessageType kType = MessageType::kShutdown;
  std::string reason;  // <= kMaxTextBytes
  // The exit status the receiving process should end with, 0 to 255 (`mrtrain launch`: the
  // job's, so that every rank reports how the job ended).
  int32_t exit_code = 0;
};

// ---- Data plane: worker <-> worker ----

// mapper -> reducer shard host: one map task's output for one shard, as a shuffle::Run
// (the values of keys[i] are values[offsets[i] .. offsets[i+1])): the sum, in tree order, of
// the outputs of the partitions of the task's node (partition, partition_count as in
// RunMapTask; the shard host checks that the node lies within the job's partitions).
struct PushRun {
  static constexpr MessageType kType = MessageType::kPushRun;
  uint64_t job_id = 0;
  int64_t epoch = 0;
  int64_t round = 0;
  int64_t step = 0;  // the update these gradients are for (ShardHost keys runs by it)
  int64_t partition = 0;
  int64_t partition_count = 1;
  int64_t shard = 0;
  int32_t attempt = 0;
  // CRC32C of the values' bytes, set by the map task that computed them: the shard checks it,
  // so a run corrupted anywhere between the mapper's memory and the shard's (a kept run spilled
  // to disk, a bit flipped past the frame checksum) is refused, never reduced.
  uint32_t values_crc32c = 0;
  std::vector<uint64_t> keys;       // packed ParamKeys (<= kMaxKeysPerMessage)
  std::vector<int64_t> offsets{0};  // keys.size() + 1 entries, from 0 up to values.size()
  std::vector<float> values;        // <= kMaxValuesPerMessage
};

// reducer shard host -> mapper: the PushRun of (step, node, shard, attempt) is stored, or
// was a duplicate of a run already stored (dropped, which is fine: every attempt computes the
// same bytes). A map task reports MapTaskDone once every shard has acknowledged its run.
struct PushAck {
  static constexpr MessageType kType = MessageType::kPushAck;
  uint64_t job_id = 0;
  int64_t step = 0;
  int64_t partition = 0;
  int64_t shard = 0;
  int32_t attempt = 0;
  uint8_t duplicate = 0;  // 1 when the shard already had this node's run for the step
  std::string error;      // non-empty: the run was refused (unknown job or shard, bad keys)
  int64_t partition_count = 1;
};

// mapper -> reducer shard host: send me the current parameters of these keys.
struct PullParams {
  static constexpr MessageType kType = MessageType::kPullParams;
  uint64_t request_id = 0;  // echoed in the reply
  uint64_t job_id = 0;
  int64_t shard = 0;
  int64_t step = 0;  // the asking task's step: it wants the parameters after step - 1 updates
  std::vector<uint64_t> keys;  // packed ParamKeys (<= kMaxKeysPerMessage)
};

// reducer shard host -> mapper, in the layout of PushRun. A shard too large for one message
// answers in `parts` replies (SplitParamsRun), sent in order on one connection; the puller puts
// them together. An error reply ends the answer, whatever parts came before it.
struct ParamsReply {
  static constexpr MessageType kType = MessageType::kParamsReply;
  uint64_t request_id = 0;
  int64_t step = 0;    // updates applied to the parameters sent
  uint32_t part = 0;   // this reply's index, < parts
  uint32_t parts = 1;  // replies the answer has, 1 ..= kMaxReplyParts
  std::string error;   // non-empty: no parameters (unknown job or shard, not at that step, or
                       // the host could not send them), and parts == 1
  std::vector<uint64_t> keys;
  std::vector<int64_t> offsets{0};
  std::vector<float> values;
};

// Moves `run` into msg's keys, offsets and values (keys are copied as packed u64).
void SetRun(shuffle::Run run, PushRun* msg);
void SetRun(shuffle::Run run, ParamsReply* msg);
// Moves the run out of msg, leaving its arrays empty.
shuffle::Run TakeRun(PushRun* msg);
shuffle::Run TakeRun(ParamsReply* msg);

// Where to cut `run` into the parts of a ParamsReply: the index of each part's first key, then
// run.num_keys(). Each part holds at most `max_values` floats and kReplyPartKeys keys, except
// that a block longer than max_values makes a part of its own. An empty run is one empty part.
std::vector<size_t> SplitParamsRun(const shuffle::Run& run, uint64_t max_values);

// Adds `part` to the answer assembled so far in `whole` (empty before the first part). Returns
// true once the answer is complete in `whole`. An error reply replaces `whole` and is complete.
// kCorruption for a part out of order or from another answer (request, step or parts differ).
Result<bool> AddReplyPart(ParamsReply part, std::optional<ParamsReply>* whole);

// ---- Encoding a run's floats in place ----

// The payload Encode(*m) makes, as a head (every field up to the floats' count) and the floats
// where they lie in m->values, which the payload keeps alive. Its tail_crc32c is
// m->values_crc32c, so the frame's checksum is combined from it without reading the floats
// again, and floats that no longer match it fail the frame check at the receiver. The payload's
// `message` is m itself, for a transport in the same process to hand over.
// REQUIRES: m->values_crc32c is the CRC32C of the values' bytes. Errors: those of Encode.
Result<GatherPayload> EncodeGather(std::shared_ptr<const PushRun> m);

// The payload Encode makes of `reply` carrying keys [begin, end) of *run (reply's own keys,
// offsets and values are ignored), with the floats in place in run->values.
Result<GatherPayload> EncodeReplyPart(const ParamsReply& reply,
                                      std::shared_ptr<const shuffle::Run> run, size_t begin,
                                      size_t end);

// The CRC32C of the floats of `push`, decoded from `payload`, to compare with its
// values_crc32c. With `payload_crc32c`, the payload's checksum as a transport checked it
// (Connection::delivered_crc32c), the floats' is split off it (Crc32cCombine) and only the head
// is read; without, the floats are read.
uint32_t ValuesCrc32c(std::string_view payload, const PushRun& push,
                      std::optional<uint32_t> payload_crc32c);

// ---- Encoding ----

Result<std::string> Encode(const Hello& m);
Result<std::string> Encode(const Welcome& m);
Result<std::string> Encode(const Heartbeat& m);
Result<std::string> Encode(const RunMapTask& m);
Result<std::string> Encode(const MapTaskDone& m);
Result<std::string> Encode(const TaskFailed& m);
Result<std::string> Encode(const ReduceRound& m);
Result<std::string> Encode(const ShardCommitted& m);
Result<std::string> Encode(const JobSpecText& m);
Result<std::string> Encode(const JobStatus& m);
Result<std::string> Encode(const EpochReport& m);
Result<std::string> Encode(const Shutdown& m);
Result<std::string> Encode(const PushRun& m);
Result<std::string> Encode(const PullParams& m);
Result<std::string> Encode(const ParamsReply& m);
Result<std::string> Encode(const PushAck& m);
Result<std::string> Encode(const JobReady& m);
Result<std::string> Encode(const LoadPartition& m);
Result<std::string> Encode(const PartitionLoaded& m);
Result<std::string> Encode(const StartTraining& m);
Result<std::string> Encode(const EvaluateTask& m);
Result<std::string> Encode(const EvalDone& m);
Result<std::string> Encode(const PredictTask& m);
Result<std::string> Encode(const PredictDone& m);
Result<std::string> Encode(const SaveShard& m);
Result<std::string> Encode(const ShardSaved& m);
Result<std::string> Encode(const EndJob& m);
Result<std::string> Encode(const StatusRequest& m);
Result<std::string> Encode(const CancelJob& m);
Result<std::string> Encode(const RoundProgress& m);
Result<std::string> Encode(const CheckpointCommitted& m);

Status Decode(std::string_view payload, Hello* m);
Status Decode(std::string_view payload, Welcome* m);
Status Decode(std::string_view payload, Heartbeat* m);
Status Decode(std::string_view payload, RunMapTask* m);
Status Decode(std::string_view payload, MapTaskDone* m);
Status Decode(std::string_view payload, TaskFailed* m);
Status Decode(std::string_view payload, ReduceRound* m);
Status Decode(std::string_view payload, ShardCommitted* m);
Status Decode(std::string_view payload, JobSpecText* m);
Status Decode(std::string_view payload, JobStatus* m);
Status Decode(std::string_view payload, EpochReport* m);
Status Decode(std::string_view payload, Shutdown* m);
Status Decode(std::string_view payload, PushRun* m);
Status Decode(std::string_view payload, PullParams* m);
Status Decode(std::string_view payload, ParamsReply* m);
Status Decode(std::string_view payload, PushAck* m);
Status Decode(std::string_view payload, JobReady* m);
Status Decode(std::string_view payload, LoadPartition* m);
Status Decode(std::string_view payload, PartitionLoaded* m);
Status Decode(std::string_view payload, StartTraining* m);
Status Decode(std::string_view payload, EvaluateTask* m);
Status Decode(std::string_view payload, EvalDone* m);
Status Decode(std::string_view payload, PredictTask* m);
Status Decode(std::string_view payload, PredictDone* m);
Status Decode(std::string_view payload, SaveShard* m);
Status Decode(std::string_view payload, ShardSaved* m);
Status Decode(std::string_view payload, EndJob* m);
Status Decode(std::string_view payload, StatusRequest* m);
Status Decode(std::string_view payload, CancelJob* m);
Status Decode(std::string_view payload, RoundProgress* m);
Status Decode(std::string_view payload, CheckpointCommitted* m);

// MRTRAIN_ASSIGN_OR_RETURN(auto task, msg::DecodeAs<msg::RunMapTask>(payload));
template <typename M>
Result<M> DecodeAs(std::string_view payload) {
  M m;
  MRTRAIN_RETURN_IF_ERROR(Decode(payload, &m));
  return m;
}

}  // namespace mrtrain::runtime::msg
