#include "runtime/protocol/messages.h"

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/crc32c.h"
#include "test/runtime/protocol/allocation_tracker.h"

namespace mrtrain::runtime::msg {
namespace {

template <typename M>
M RoundTrip(const M& in) {
  Result<std::string> bytes = Encode(in);
  REQUIRE(bytes.ok());
  M out;
  Status s = Decode(*bytes, &out);
  INFO(s.ToString());
  REQUIRE(s.ok());
  // Re-encoding gives the same bytes: nothing was lost or reordered.
  Result<std::string> again = Encode(out);
  REQUIRE(again.ok());
  CHECK(*again == *bytes);
  return out;
}

// Every strict prefix of a valid payload, and the payload with a byte appended, is rejected
// cleanly.
template <typename M>
void CheckTruncationsRejected(const M& m) {
  std::string bytes = *Encode(m);
  for (size_t n = 0; n < bytes.size(); ++n) {
    M out;
    Status s = Decode(std::string_view(bytes).substr(0, n), &out);
    INFO("prefix of " << n << " bytes");
    CHECK(s.code() == StatusCode::kCorruption);
  }
  M out;
  Status s = Decode(bytes + "x", &out);
  CHECK(s.code() == StatusCode::kCorruption);
  CHECK_THAT(s.message(), Catch::Contains("trailing"));
}

void PutU64(std::string* s, size_t at, uint64_t v) { std::memcpy(&(*s)[at], &v, 8); }

PushRun SamplePushRun() {
  PushRun m;
  m.job_id = 7;
  m.epoch = 3;
  m.round = 2;
  m.step = 23;
  m.partition = 11;
  m.shard = 1;
  m.attempt = 2;
  m.values_crc32c = 0xdeadbeef;
  m.keys = {ParamKey(0, 5).packed(), ParamKey(1, 0).packed(), ParamKey(2, 9).packed()};
  m.offsets = {0, 4, 4, 7};
  m.values = {1.5f, -2.f, 3.25f, 0.f, 1e-30f, -0.f, 6.f};
  return m;
}

TEST_CASE("control-plane messages round trip", "[runtime][protocol]") {
  Hello hello{"node-3:4411", 8, "10.0.0.3:7071"};
  Hello h = RoundTrip(hello);
  CHECK(h.worker_name == "node-3:4411");
  CHECK(h.slots == 8);
  CHECK(h.data_address == "10.0.0.3:7071");

  Welcome w = RoundTrip(Welcome{42, 1500});
  CHECK(w.worker_id == 42);
  CHECK(w.heartbeat_interval_ms == 1500);

  Heartbeat hb = RoundTrip(Heartbeat{42, 99, 3});
  CHECK(hb.worker_id == 42);
  CHECK(hb.sequence == 99);
  CHECK(hb.running_tasks == 3);

  RunMapTask task = RoundTrip(RunMapTask{5, 2, 1, 17, 3, 40, 0.125});
  CHECK(task.job_id == 5);
  CHECK(task.epoch == 2);
  CHECK(task.round == 1);
  CHECK(task.partition == 17);
  CHECK(task.attempt == 3);
  CHECK(task.step == 40);
  CHECK(task.learning_rate == 0.125);

  MapTaskDone done =
      RoundTrip(MapTaskDone{5, 2, 1, 17, 3, 12.5, 1000, 870, 1 << 20, int64_t{3} << 30});
  CHECK(done.loss_sum == 12.5);
  CHECK(done.examples == 1000);
  CHECK(done.correct == 870);
  CHECK(done.bytes_sent == 1 << 20);
  CHECK(done.peak_rss_bytes == int64_t{3} << 30);
  CHECK(done.partition == 17);

  TaskFailed failed{5,
                    TaskKind::kReduce,
                    2,
                    1,
                    -1,
                    4,
                    1,
                    DataSet::kTrain,
                    StatusCode::kPluginError,
                    "plugin threw: bad row at data/part-3.csv:17"};
  TaskFailed f = RoundTrip(failed);
  CHECK(f.kind == TaskKind::kReduce);
  CHECK(f.shard == 4);
  CHECK(f.partition == -1);
  CHECK(f.code == StatusCode::kPluginError);
  CHECK(f.message == failed.message);

  ReduceRound rr = RoundTrip(ReduceRound{5, 2, 1, 3, 41, 0.01, 60000});
  CHECK(rr.shard == 3);
  CHECK(rr.step == 41);
  CHECK(rr.learning_rate == 0.01);
  CHECK(rr.example_count == 60000);

  ShardCommitted sc = RoundTrip(ShardCommitted{5, 2, 1, 3, 41});
  CHECK(sc.shard == 3);
  CHECK(sc.step == 41);

  JobSpecText spec = RoundTrip(JobSpecText{0,
                                           "model: softmax\nepochs: 3\n",
                                           "job.yaml",
                                           {"training.epochs=2", "seed=3"},
                                           "/home/a",
                                           1,
                                           {std::string(64, 'a')},
                                           {std::string("\x7f"
                                                        "ELF\0\1",
                                                        6)}});
  CHECK(spec.yaml == "model: softmax\nepochs: 3\n");
  CHECK(spec.source == "job.yaml");
  CHECK(spec.overrides == std::vector<std::string>{"training.epochs=2", "seed=3"});
  CHECK(spec.working_dir == "/home/a");
  CHECK(spec.resume == 1);
  CHECK(spec.plugin_sha256 == std::vector<std::string>{std::string(64, 'a')});
  CHECK(spec.plugin_bytes == std::vector<std::string>{std::string("\x7f"
                                                                  "ELF\0\1",
                                                                  6)});
  JobSpecText unpaired;
  unpaired.plugin_bytes = {"lib"};
  CHECK(Encode(unpaired).status().code() == StatusCode::kInvalidArgument);

  PartitionLoaded loaded = RoundTrip(PartitionLoaded{
      5, DataSet::kTest, 3, 1, 1000, 784, 0, 1, 9.0f, 2, {"a.csv:3: bad", "a.csv:9: bad"}});
  CHECK(loaded.set == DataSet::kTest);
  CHECK(loaded.num_cols == 784);
  CHECK(loaded.max_label == 9.0f);
  CHECK(loaded.skipped_samples.size() == 2);

  StartTraining start =
      RoundTrip(StartTraining{5, 784, 10, 0, 3, 700, {0, 2}, {"a:1", "b:2", "a:1"}, 9});
  CHECK(start.placement == 9);
  CHECK(start.hosted_shards == std::vector<int64_t>{0, 2});
  CHECK(start.shard_addresses.size() == 3);
  CHECK(start.resume_epochs == 3);
  CHECK(start.step == 700);

  EvalDone eval = RoundTrip(EvalDone{5, DataSet::kValidation, 2, 0, 33, 12.5, 100, 90});
  CHECK(eval.set == DataSet::kValidation);
  CHECK(eval.loss_sum == 12.5);
  CHECK(eval.step == 33);
  CHECK(eval.correct == 90);

  PredictTask predict = RoundTrip(PredictTask{5, 3, 1, 300});
  CHECK(predict.first_row == 300);
  CHECK(predict.attempt == 1);
  PredictDone predicted =
      RoundTrip(PredictDone{5, 3, 1, 100, 4096, 0xdeadbeefu, 90, 1.5, 2, 3, 1, 8192, 77});
  CHECK(predicted.crc32c == 0xdeadbeefu);
  CHECK(predicted.squared_error == 1.5);
  CHECK(predicted.outputs == 3);
  CHECK(predicted.model_bytes == 8192);
  CHECK(predicted.model_crc32c == 77);
  PredictDone bad_flag = predicted;
  bad_flag.classifier = 2;
  CHECK(Encode(bad_flag).status().code() == StatusCode::kInvalidArgument);
  PredictDone truncated;
  CHECK(Decode(Encode(predicted)->substr(0, 20), &truncated).code() == StatusCode::kCorruption);

  ShardSaved saved = RoundTrip(ShardSaved{5, 1, 3, 4096, 0xdeadbeefu});
  CHECK(saved.crc32c == 0xdeadbeefu);
  CHECK(saved.bytes == 4096);

  JobStatus status = RoundTrip(JobStatus{5, JobState::kFailed, R"({"error":"x"})"});
  CHECK(status.state == JobState::kFailed);
  CHECK(status.json == R"({"error":"x"})");

  EpochReport report = RoundTrip(EpochReport{5, 3, R"({"epoch":3,"loss":0.41})"});
  CHECK(report.epoch == 3);
  CHECK(report.json_line == R"({"epoch":3,"loss":0.41})");

  CHECK(RoundTrip(Shutdown{"master exiting"}).reason == "master exiting");
  CHECK(RoundTrip(Shutdown{}).reason.empty());
}

TEST_CASE("data-plane messages round trip", "[runtime][protocol]") {
  PushRun push = RoundTrip(SamplePushRun());
  CHECK(push.job_id == 7);
  CHECK(push.epoch == 3);
  CHECK(push.round == 2);
  CHECK(push.step == 23);
  CHECK(push.partition == 11);
  CHECK(push.shard == 1);
  CHECK(push.attempt == 2);
  CHECK(push.values_crc32c == 0xdeadbeef);
  CHECK(push.keys == SamplePushRun().keys);
  CHECK(push.offsets == SamplePushRun().offsets);
  CHECK(std::memcmp(push.values.data(), SamplePushRun().values.data(), 7 * sizeof(float)) == 0);

  const CheckpointCommitted committed = RoundTrip(CheckpointCommitted{4, 2, 40});
  CHECK(committed.job_id == 4);
  CHECK(committed.epochs_done == 2);
  CHECK(committed.step == 40);

  PushRun empty = RoundTrip(PushRun{});
  CHECK(empty.keys.empty());
  CHECK(empty.offsets == std::vector<int64_t>{0});

  PullParams pull = RoundTrip(PullParams{77, 5, 2, 40, {1, 2, 3}});
  CHECK(pull.request_id == 77);
  CHECK(pull.shard == 2);
  CHECK(pull.step == 40);
  CHECK(pull.keys == std::vector<uint64_t>{1, 2, 3});

  ParamsReply reply;
  reply.request_id = 77;
  reply.step = 40;
  reply.keys = {1, 2};
  reply.offsets = {0, 1, 3};
  reply.values = {0.5f, 0.25f, 0.125f};
  reply.part = 2;
  reply.parts = 5;
  ParamsReply r = RoundTrip(reply);
  CHECK(r.request_id == 77);
  CHECK(r.part == 2);
  CHECK(r.parts == 5);
  CHECK(r.values == reply.values);

  PushAck ack = RoundTrip(PushAck{7, 23, 11, 1, 2, 1, ""});
  CHECK(ack.step == 23);
  CHECK(ack.partition == 11);
  CHECK(ack.shard == 1);
  CHECK(ack.attempt == 2);
  CHECK(ack.duplicate == 1);
  PushAck bad_ack{7, 23, 11, 1, 2, 2, ""};
  CHECK(Encode(bad_ack).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("payload is exactly the documented fields: no archive header, blocks contiguous",
          "[runtime][protocol]") {
  // Heartbeat: worker_id u32, sequence u64, running_tasks u32.
  std::string hb = *Encode(Heartbeat{0x01020304, 0x1112131415161718ull, 9});
  REQUIRE(hb.size() == 16);
  CHECK(hb.substr(0, 4) == std::string("\x04\x03\x02\x01", 4));
  CHECK(static_cast<uint8_t>(hb[4]) == 0x18);
  CHECK(static_cast<uint8_t>(hb[12]) == 9);

  // PushRun: 8 scalars (7 x 8 + 4 bytes), then three counted blocks.
  PushRun m;
  m.keys.assign(1000, 1);
  m.offsets.assign(1001, 0);
  for (int i = 0; i <= 1000; ++i) m.offsets[i] = 100 * i;
  m.values.assign(100000, 0.5f);
  std::string bytes = *Encode(m);
  CHECK(bytes.size() == 7 * 8 + 4 + 4 + (8 + 1000 * 8) + (8 + 1001 * 8) + (8 + 100000 * 4));
  size_t values_at = bytes.size() - 100000 * 4;
  float first = 0;
  std::memcpy(&first, bytes.data() + values_at, 4);
  CHECK(first == 0.5f);

  // Text: a u64 count and the bytes; then the i32 exit code.
  std::string shutdown = *Encode(Shutdown{"bye", 3});
  CHECK(shutdown == std::string("\x03\0\0\0\0\0\0\0bye\x03\0\0\0", 15));
}

TEST_CASE("truncated and padded payloads are rejected for every message", "[runtime][protocol]") {
  CheckTruncationsRejected(Hello{"w", 2, "h:1"});
  CheckTruncationsRejected(Welcome{1, 2});
  CheckTruncationsRejected(Heartbeat{1, 2, 3});
  CheckTruncationsRejected(RunMapTask{1, 2, 3, 4, 5, 6, 0.5});
  CheckTruncationsRejected(MapTaskDone{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CheckTruncationsRejected(
      TaskFailed{1, TaskKind::kMap, 2, 3, 4, -1, 0, DataSet::kTrain, StatusCode::kIOError, "disk"});
  CheckTruncationsRejected(ReduceRound{1, 2, 3, 4, 5, 0.5, 7});
  CheckTruncationsRejected(ShardCommitted{1, 2, 3, 4, 5});
  CheckTruncationsRejected(JobSpecText{1, "x: 1", "j.yaml", {"a=1"}, "/w", 0, {}, {}});
  CheckTruncationsRejected(JobStatus{1, JobState::kRunning, "{}"});
  CheckTruncationsRejected(EpochReport{1, 2, "{}"});
  CheckTruncationsRejected(Shutdown{"x"});
  CheckTruncationsRejected(SamplePushRun());
  CheckTruncationsRejected(PullParams{1, 2, 3, 4, {5, 6}});
  CheckTruncationsRejected(PushAck{1, 2, 3, 4, 5, 0, "no such shard"});
  ParamsReply reply;
  reply.keys = {1};
  reply.offsets = {0, 2};
  reply.values = {1, 2};
  CheckTruncationsRejected(reply);
}

TEST_CASE("sizes over their cap are rejected before anything is allocated", "[runtime][protocol]") {
  SECTION("a text count over its cap") {
    std::string bytes = *Encode(Shutdown{"x"});
    PutU64(&bytes, 0, kMaxTextBytes + 1);
    Shutdown out;
    testing::AllocationTracker tracker;
    Status s = Decode(bytes, &out);
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("reason") && Catch::Contains("cap"));
    CHECK(tracker.largest_request() < 4096);
  }
  SECTION("a key count over its cap") {
    std::string bytes = *Encode(PullParams{1, 2, 3, 4, {5}});
    PutU64(&bytes, 32, kMaxKeysPerMessage + 1);
    PullParams out;
    testing::AllocationTracker tracker;
    Status s = Decode(bytes, &out);
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("keys") && Catch::Contains("cap"));
    CHECK(tracker.largest_request() < 4096);
  }
  SECTION("a count under its cap but beyond the bytes present") {
    PushRun m;
    std::string bytes = *Encode(m);
    size_t values_count_at = bytes.size() - 8;              // empty values: just its count
    PutU64(&bytes, values_count_at, kMaxValuesPerMessage);  // 256 MiB of floats claimed
    PushRun out;
    testing::AllocationTracker tracker;
    Status s = Decode(bytes, &out);
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("bytes are left"));
    CHECK(tracker.largest_request() < 4096);
  }
  SECTION("a shard list count over its cap") {
    std::string bytes = *Encode(StartTraining{});
    // After job_id, num_features, num_classes, is_sparse, resume_epochs, step and the empty
    // hosted_shards' count: the count of shard_addresses.
    PutU64(&bytes, 8 + 8 + 8 + 1 + 8 + 8 + 8, kMaxShardsPerMessage + 1);
    StartTraining out;
    CHECK(Decode(bytes, &out).code() == StatusCode::kCorruption);
  }
  SECTION("encode refuses what the peer would refuse") {
    Hello hello;
    hello.worker_name.assign(kMaxNameBytes + 1, 'w');
    Result<std::string> r = Encode(hello);
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains("worker_name"));
  }
}

TEST_CASE("broken invariants are rejected on both sides", "[runtime][protocol]") {
  SECTION("run offsets that do not match keys or values") {
    PushRun m = SamplePushRun();
    m.offsets = {0, 4, 3, 7};
    CHECK(Encode(m).status().code() == StatusCode::kInvalidArgument);
    m.offsets = {0, 4, 4, 8};
    CHECK(Encode(m).status().code() == StatusCode::kInvalidArgument);
    m.offsets = {0, 7};
    CHECK(Encode(m).status().code() == StatusCode::kInvalidArgument);

    std::string bytes = *Encode(SamplePushRun());
    // offsets[1] sits after 64 bytes of scalars, the keys block (8 + 24) and offsets' count.
    PutU64(&bytes, 64 + 32 + 8 + 8, 100);
    PushRun out;
    Status s = Decode(bytes, &out);
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("offsets"));
  }
  SECTION("map tasks, their reports and runs name a node of the reduction tree") {
    PushRun run = SamplePushRun();
    run.partition = 8;
    run.partition_count = 4;
    CHECK(RoundTrip(run).partition_count == 4);
    run.partition_count = 3;  // not a power of two
    CHECK(Encode(run).status().code() == StatusCode::kInvalidArgument);
    run.partition = 6;
    run.partition_count = 4;  // not aligned
    Status unaligned = Encode(run).status();
    CHECK(unaligned.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(unaligned.message(),
               Catch::Contains("partitions [6, +4) are not a node of the reduction tree"));
    // On the wire: partition_count follows partition (at byte 32).
    std::string bytes = *Encode(SamplePushRun());
    PutU64(&bytes, 40, 2);  // partition 11, count 2
    PushRun out;
    Status s = Decode(bytes, &out);
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK_THAT(s.message(), Catch::Contains("not a node of the reduction tree"));
    RunMapTask task{1, 0, 0, 4, 0, 1, 0.1, 4};
    CHECK(RoundTrip(task).partition_count == 4);
    task.partition_count = 0;
    CHECK(Encode(task).status().code() == StatusCode::kInvalidArgument);
    MapTaskDone done;
    done.partition = 2;
    done.partition_count = 4;
    CHECK(Encode(done).status().code() == StatusCode::kInvalidArgument);
    PushAck ack{7, 23, 12, 1, 2, 0, "", 4};
    CHECK(RoundTrip(ack).partition_count == 4);
    ack.partition_count = 8;
    CHECK(Encode(ack).status().code() == StatusCode::kInvalidArgument);
    TaskFailed failed{1, TaskKind::kMap, 0, 0, 3, -1, 0, DataSet::kTrain, StatusCode::kIOError, "?",
                      2};
    CHECK(Encode(failed).status().code() == StatusCode::kInvalidArgument);
    failed.kind = TaskKind::kLoad;  // load tasks name a partition, no node
    CHECK(Encode(failed).ok());
  }
  SECTION("a task failure without an error code or with an unknown kind") {
    TaskFailed m{1, TaskKind::kMap, 0, 0, 0, -1, 0, DataSet::kTrain, StatusCode::kOk, "?"};
    CHECK(Encode(m).status().code() == StatusCode::kInvalidArgument);
    m.code = StatusCode::kIOError;
    std::string bytes = *Encode(m);
    bytes[8] = 7;  // kind
    TaskFailed out;
    CHECK(Decode(bytes, &out).code() == StatusCode::kCorruption);
  }
  SECTION("an unknown job state") {
    std::string bytes = *Encode(JobStatus{1, JobState::kRunning, ""});
    bytes[8] = 9;
    JobStatus out;
    CHECK(Decode(bytes, &out).code() == StatusCode::kCorruption);
  }
}

TEST_CASE("a failed decode leaves the output untouched", "[runtime][protocol]") {
  Hello out{"keep", 1, "me:1"};
  CHECK_FALSE(Decode("garbage", &out).ok());
  CHECK(out.worker_name == "keep");
}

TEST_CASE("runs move in and out of PushRun", "[runtime][protocol]") {
  shuffle::Run run;
  float a[] = {1, 2, 3};
  run.Append(ParamKey(3, 4), a, 3);
  run.Append(ParamKey(0, 1), a, 1);
  PushRun m;
  SetRun(run, &m);
  CHECK(m.keys == std::vector<uint64_t>{ParamKey(3, 4).packed(), ParamKey(0, 1).packed()});
  CHECK(m.offsets == std::vector<int64_t>{0, 3, 4});
  PushRun decoded = *DecodeAs<PushRun>(*Encode(m));
  shuffle::Run back = TakeRun(&decoded);
  CHECK(back.keys == run.keys);
  CHECK(back.offsets == run.offsets);
  CHECK(back.values == run.values);
  CHECK(decoded.values.empty());
}

TEST_CASE("a PushRun encoded in place is the bytes and checksum of the one-string encoding",
          "[runtime][protocol]") {
  auto m = std::make_shared<PushRun>();
  m->job_id = 7;
  m->step = 12;
  m->partition = 4;
  m->partition_count = 2;
  m->shard = 1;
  m->attempt = 3;
  float a[] = {1.5f, -2, 3, 4, 5};
  shuffle::Run run;
  run.Append(ParamKey(3, 4), a, 3);
  run.Append(ParamKey(0, 1), a + 3, 2);
  SetRun(run, m.get());
  m->values_crc32c = Crc32c(m->values.data(), m->values.size() * sizeof(float));
  const std::string whole = *Encode(*m);

  Result<GatherPayload> gathered = EncodeGather(m);
  REQUIRE(gathered.ok());
  CHECK(gathered->Join() == whole);
  CHECK(gathered->size() == whole.size());
  // The floats are not copied: the tail is m's own values, kept alive by the payload.
  CHECK(gathered->tail.data() == reinterpret_cast<const char*>(m->values.data()));
  CHECK(gathered->tail.size() == 5 * sizeof(float));
  CHECK(gathered->owner.get() == m.get());
  // The frame checksum comes from values_crc32c and the head alone, and is the whole payload's.
  CHECK(gathered->tail_crc32c == m->values_crc32c);
  CHECK(gathered->Crc32c() == Crc32c(whole.data(), whole.size()));
  GatherPayload read_again = *gathered;
  read_again.tail_crc32c.reset();
  CHECK(read_again.Crc32c() == Crc32c(whole.data(), whole.size()));

  // The receiver's check: the floats' checksum, read from them or split off the frame's.
  PushRun decoded = *DecodeAs<PushRun>(whole);
  const uint32_t frame_crc = Crc32c(whole.data(), whole.size());
  CHECK(ValuesCrc32c(whole, decoded, std::nullopt) == m->values_crc32c);
  CHECK(ValuesCrc32c(whole, decoded, frame_crc) == m->values_crc32c);
  std::string flipped = whole;
  flipped[flipped.size() - 2] ^= 0x04;  // in the last float
  PushRun decoded_flipped = *DecodeAs<PushRun>(flipped);
  CHECK(ValuesCrc32c(flipped, decoded_flipped, std::nullopt) != m->values_crc32c);
  CHECK(ValuesCrc32c(flipped, decoded_flipped, Crc32c(flipped.data(), flipped.size())) !=
        m->values_crc32c);

  // An empty run: the head is the whole message.
  auto empty = std::make_shared<PushRun>();
  empty->values_crc32c = Crc32c(nullptr, 0);
  Result<GatherPayload> none = EncodeGather(empty);
  REQUIRE(none.ok());
  CHECK(none->tail.empty());
  CHECK(none->Join() == *Encode(*empty));
  CHECK(none->Crc32c() == Crc32c(none->head.data(), none->head.size()));

  // The same invariants as Encode.
  m->offsets.back() = 4;
  CHECK(EncodeGather(m).status().code() == StatusCode::kInvalidArgument);
}

// A run of `blocks` blocks of `length` floats, values 0, 1, 2, ...
shuffle::Run RunOfBlocks(int blocks, int length) {
  shuffle::Run run;
  std::vector<float> v(length);
  for (int b = 0; b < blocks; ++b) {
    for (int i = 0; i < length; ++i) v[i] = static_cast<float>(b * length + i);
    run.Append(ParamKey(0, b), v.data(), length);
  }
  return run;
}

TEST_CASE("a large shard's reply is cut into parts under the value cap and put together again",
          "[runtime][protocol]") {
  const shuffle::Run run = RunOfBlocks(10, 3);                // 30 floats
  const std::vector<size_t> bounds = SplitParamsRun(run, 7);  // 2 blocks (6 floats) a part
  CHECK(bounds == std::vector<size_t>{0, 2, 4, 6, 8, 10});
  const auto shared = std::make_shared<const shuffle::Run>(run);
  std::optional<ParamsReply> whole;
  for (size_t p = 0; p + 1 < bounds.size(); ++p) {
    ParamsReply fields;
    fields.request_id = 9;
    fields.step = 4;
    fields.part = static_cast<uint32_t>(p);
    fields.parts = static_cast<uint32_t>(bounds.size() - 1);
    Result<GatherPayload> encoded = EncodeReplyPart(fields, shared, bounds[p], bounds[p + 1]);
    REQUIRE(encoded.ok());
    // The floats are sent from the run itself.
    CHECK(encoded->tail.data() ==
          reinterpret_cast<const char*>(shared->ValuesOf(static_cast<int64_t>(bounds[p]))));
    // Each part is a valid message on its own.
    ParamsReply decoded = *DecodeAs<ParamsReply>(encoded->Join());
    CHECK(decoded.values.size() <= 7);
    CHECK(decoded.request_id == 9);
    CHECK(decoded.part == p);
    Result<bool> complete = AddReplyPart(std::move(decoded), &whole);
    REQUIRE(complete.ok());
    CHECK(*complete == (p + 2 == bounds.size()));
  }
  REQUIRE(whole.has_value());
  shuffle::Run back = TakeRun(&*whole);
  CHECK(back.keys == run.keys);
  CHECK(back.offsets == run.offsets);
  CHECK(back.values == run.values);
}

TEST_CASE("reply parts: long blocks travel alone, empty runs are one part", "[runtime][protocol]") {
  CHECK(SplitParamsRun(RunOfBlocks(3, 10), 4) == std::vector<size_t>{0, 1, 2, 3});
  CHECK(SplitParamsRun(shuffle::Run(), kReplyPartValues) == std::vector<size_t>{0, 0});
  CHECK(SplitParamsRun(RunOfBlocks(5, 2), kReplyPartValues) == std::vector<size_t>{0, 5});
}

TEST_CASE("reply parts out of order, from another answer, or after an error",
          "[runtime][protocol]") {
  ParamsReply first;
  first.request_id = 1;
  first.step = 3;
  first.parts = 3;
  SECTION("a part that does not come first") {
    ParamsReply second = first;
    second.part = 1;
    std::optional<ParamsReply> whole;
    CHECK(AddReplyPart(second, &whole).status().code() == StatusCode::kCorruption);
  }
  SECTION("a part skipped, or of another step") {
    std::optional<ParamsReply> whole;
    REQUIRE(AddReplyPart(first, &whole).ok());
    ParamsReply third = first;
    third.part = 2;
    CHECK_THAT(AddReplyPart(third, &whole).status().message(),
               Catch::Contains("part 2 of 3 (step 3) does not follow part 0 of 3"));
    ParamsReply other = first;
    other.part = 1;
    other.step = 4;
    CHECK(AddReplyPart(other, &whole).status().code() == StatusCode::kCorruption);
  }
  SECTION("an error reply ends the answer") {
    std::optional<ParamsReply> whole;
    REQUIRE(AddReplyPart(first, &whole).ok());
    ParamsReply error;
    error.request_id = 1;
    error.error = "over the frame limit";
    Result<bool> complete = AddReplyPart(error, &whole);
    REQUIRE(complete.ok());
    CHECK(*complete);
    CHECK(whole->error == "over the frame limit");
  }
  SECTION("part and parts are checked on decode") {
    ParamsReply bad = first;
    bad.part = 3;
    CHECK(Encode(bad).status().code() == StatusCode::kInvalidArgument);
    bad.part = 0;
    bad.parts = 0;
    CHECK_FALSE(Encode(bad).ok());
    bad.parts = 2;
    bad.error = "no";
    CHECK_FALSE(Encode(bad).ok());
  }
}

}  // namespace
}  // namespace mrtrain::runtime::msg
