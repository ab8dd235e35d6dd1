#include "runtime/worker/worker_service.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/crc32c.h"
#include "engine/base/log.h"
#include "engine/tensor/param_key.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/in_process_transport.h"
#include "runtime/transport/tcp_transport.h"
#include "shuffle/merge/tree_sum.h"
#include "test/testing/captured_log.h"
#include "test/testing/temp_dir.h"

// WorkerService driven by a scripted master over the in-process transport.
namespace mrtrain::runtime {
namespace {

using namespace std::chrono_literals;
using mrtrain::testing::CapturedLog;

// The master's side of the control connection: welcomes the worker and records what it sends.
class ScriptedMaster {
 public:
  explicit ScriptedMaster(Transport* transport, const std::string& listen = "inproc://")
      : state_(std::make_shared<State>()) {
    ConnectionHandler h;
    // Weakly: the state keeps the worker's connection, which keeps this handler.
    h.on_message = [weak = std::weak_ptr<State>(state_)](const std::shared_ptr<Connection>& c,
                                                         MessageType type, std::string payload) {
      std::shared_ptr<State> state = weak.lock();
      if (!state) return;
      if (type == MessageType::kHello) {
        (void)SendMessage(*c, msg::Welcome{1, /*heartbeat_interval_ms=*/0});
      }
      {
        std::lock_guard<std::mutex> lock(state->mu);
        state->worker = c;
        state->received.emplace_back(type, std::move(payload));
      }
      state->cv.notify_all();
    };
    Result<std::string> address = transport->Listen(listen, h);
    if (!address.ok()) FAIL(address.status().ToString());
    address_ = *address;
  }

  const std::string& address() const { return address_; }

  template <typename M>
  Status Send(const M& m) {
    std::shared_ptr<Connection> c;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      c = state_->worker;
    }
    if (!c) return UnavailableError("no worker connected");
    return SendMessage(*c, m);
  }

  // Sends bytes that need not decode as `type`.
  Status SendRaw(MessageType type, std::string payload) {
    std::shared_ptr<Connection> c;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      c = state_->worker;
    }
    if (!c) return UnavailableError("no worker connected");
    return c->Send(type, std::move(payload));
  }

  // Waits for the worker's next message of `type`, skipping others; the decoded message, or
  // kDeadlineExceeded.
  template <typename M>
  Result<M> Await(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(state_->mu);
    std::string payload;
    const bool arrived = state_->cv.wait_for(lock, timeout, [&] {
      for (size_t& i = state_->next[M::kType]; i < state_->received.size(); ++i) {
        if (state_->received[i].first == M::kType) {
          payload = state_->received[i++].second;
          return true;
        }
      }
      return false;
    });
    if (!arrived) return DeadlineExceededError("no message of the awaited type");
    return msg::DecodeAs<M>(payload);
  }

  // How many messages of `type` the worker has sent.
  size_t Count(MessageType type) const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return static_cast<size_t>(std::count_if(state_->received.begin(), state_->received.end(),
                                             [&](const auto& m) { return m.first == type; }));
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::shared_ptr<Connection> worker;
    std::vector<std::pair<MessageType, std::string>> received;
    std::map<MessageType, size_t> next;  // Await's position, by type
  };
  std::shared_ptr<State> state_;
  std::string address_;
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

msg::JobSpecText Spec(uint64_t job_id, const testing::TempDir& dir) {
  msg::JobSpecText text;
  text.job_id = job_id;
  text.source = "job.yaml";
  text.working_dir = dir.path();
  text.yaml =
      "name: ended\n"
      "data:\n"
      "  train: {path: train.csv, format: csv, partitions: 1}\n"
      "model: {type: logistic}\n"
      "update: {rule: sgd, learning_rate: 0.1}\n"
      "training: {epochs: 1}\n"
      "output: {dir: out}\n";
  return text;
}

TEST_CASE("a task of a job that ended on the worker is dropped quietly, not reported as failed",
          "[runtime][worker]") {
  testing::TempDir dir;
  dir.Write("train.csv", "1,0.5,0.25\n0,1,2\n");
  std::string log;
  {
    CapturedLog captured("worker", spdlog::level::debug);
    {
      auto transport = MakeInProcessTransport();
      ScriptedMaster master(transport.get());
      WorkerOptions options;
      options.master_address = master.address();
      options.data_address = "inproc://";
      options.name = "w";
      options.slots = 1;  // one compute thread: its tasks run in arrival order
      options.plugin_cache_dir = dir.File("plugin-cache");
      options.spill_dir = dir.File("spill");
      WorkerService worker(transport.get(), options);
      REQUIRE(worker.Start().ok());
      for (uint64_t job : {1, 2}) {
        REQUIRE(master.Send(Spec(job, dir)).ok());
        Result<msg::JobReady> ready = master.Await<msg::JobReady>();
        INFO(ready.status().ToString());
        REQUIRE(ready.ok());
        CHECK(ready->job_id == job);
      }
      // Job 1 failed on the master, which ends it while a task of it is still queued here.
      REQUIRE(master.Send(msg::EndJob{1}).ok());
      REQUIRE(master.Send(msg::RunMapTask{1, 0, 0, 0, 0, 1, 0.1}).ok());
      REQUIRE(master.Send(msg::LoadPartition{1, msg::DataSet::kTrain, 0, 0}).ok());
      // Job 2's load runs after them on the one compute thread: once it is answered, they ran.
      REQUIRE(master.Send(msg::LoadPartition{2, msg::DataSet::kTrain, 0, 0}).ok());
      Result<msg::PartitionLoaded> loaded = master.Await<msg::PartitionLoaded>();
      INFO(loaded.status().ToString());
      REQUIRE(loaded.ok());
      CHECK(loaded->job_id == 2);
      CHECK(loaded->rows == 2);
      CHECK(master.Count(MessageType::kTaskFailed) == 0);
      worker.Stop();
      transport->Stop();
    }
    log = captured.text();
  }
  INFO(log);
  CHECK_FALSE(Contains(log, "task failed"));
  CHECK_FALSE(Contains(log, "warning"));
  CHECK(Contains(log,
                 "debug dropping a task of job 1, which is not running here: NotFound: "
                 "job 1 is not set up here"));
}

WorkerOptions OptionsFor(const ScriptedMaster& master, const testing::TempDir& dir) {
  WorkerOptions options;
  options.master_address = master.address();
  options.data_address = "inproc://";
  options.name = "w";
  options.slots = 1;
  options.plugin_cache_dir = dir.File("plugin-cache");
  options.spill_dir = dir.File("spill");
  return options;
}

// The control handler by concept, each answered as the master expects.
TEST_CASE(
    "job control: a spec that cannot be set up and a start of a job not set up are "
    "setup failures, the start's naming its placement",
    "[runtime][worker]") {
  testing::TempDir dir;
  auto transport = MakeInProcessTransport();
  ScriptedMaster master(transport.get());
  WorkerService worker(transport.get(), OptionsFor(master, dir));
  REQUIRE(worker.Start().ok());
  REQUIRE(master.Await<msg::Hello>().ok());

  msg::JobSpecText bad = Spec(4, dir);  // its train.csv does not exist
  REQUIRE(master.Send(bad).ok());
  Result<msg::TaskFailed> setup = master.Await<msg::TaskFailed>();
  REQUIRE(setup.ok());
  CHECK(setup->job_id == 4);
  CHECK(setup->kind == msg::TaskKind::kSetup);
  CHECK(Contains(setup->message, "train.csv"));

  msg::StartTraining start;
  start.job_id = 9;
  start.placement = 7;
  REQUIRE(master.Send(start).ok());
  Result<msg::TaskFailed> started = master.Await<msg::TaskFailed>();
  REQUIRE(started.ok());
  CHECK(started->job_id == 9);
  CHECK(started->kind == msg::TaskKind::kSetup);
  CHECK(started->round == 7);  // which placement it answers
  CHECK(master.Count(MessageType::kJobReady) == 0);
  worker.Stop();
  transport->Stop();
}

TEST_CASE("shard work: a reduce or save of a shard this worker does not host fails, naming it",
          "[runtime][worker]") {
  testing::TempDir dir;
  dir.Write("train.csv", "1,0.5,0.25\n0,1,2\n");
  auto transport = MakeInProcessTransport();
  ScriptedMaster master(transport.get());
  WorkerService worker(transport.get(), OptionsFor(master, dir));
  REQUIRE(worker.Start().ok());
  Result<msg::Hello> hello = master.Await<msg::Hello>();
  REQUIRE(hello.ok());
  msg::JobSpecText text = Spec(1, dir);
  text.yaml += "shuffle: {reducers: 2}\n";
  REQUIRE(master.Send(text).ok());
  REQUIRE(master.Await<msg::JobReady>().ok());
  msg::StartTraining start;
  start.job_id = 1;
  start.num_features = 2;
  start.num_classes = 2;
  start.hosted_shards = {0};  // of two; shard 1 is elsewhere
  start.shard_addresses = {hello->data_address, "inproc://elsewhere"};
  start.placement = 1;
  REQUIRE(master.Send(start).ok());
  Result<msg::JobReady> started = master.Await<msg::JobReady>();
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  CHECK(started->phase == msg::JobReady::kTraining);

  REQUIRE(master.Send(msg::ReduceRound{1, 0, 2, /*shard=*/1, 3, 0.1, 10}).ok());
  Result<msg::TaskFailed> reduce = master.Await<msg::TaskFailed>();
  REQUIRE(reduce.ok());
  CHECK(reduce->kind == msg::TaskKind::kReduce);
  CHECK(reduce->shard == 1);
  CHECK(reduce->message == "reducer shard 1 of job 1 is not hosted here");
  CHECK(reduce->code == StatusCode::kNotFound);
  CHECK(reduce->round == 2);
  REQUIRE(master.Send(msg::SaveShard{1, /*shard=*/5, 1, dir.File("s5")}).ok());
  Result<msg::TaskFailed> save = master.Await<msg::TaskFailed>();
  REQUIRE(save.ok());
  CHECK(save->kind == msg::TaskKind::kSave);
  CHECK(save->shard == 5);
  CHECK(master.Count(MessageType::kShardCommitted) == 0);
  worker.Stop();
  transport->Stop();
}

TEST_CASE(
    "session: a message that does not decode is logged and the worker carries on; "
    "Shutdown stops it with the master's exit code",
    "[runtime][worker]") {
  testing::TempDir dir;
  dir.Write("train.csv", "1,0.5,0.25\n0,1,2\n");
  std::string log;
  {
    CapturedLog captured("worker", spdlog::level::debug);
    auto transport = MakeInProcessTransport();
    ScriptedMaster master(transport.get());
    WorkerService worker(transport.get(), OptionsFor(master, dir));
    REQUIRE(worker.Start().ok());
    REQUIRE(master.Await<msg::Hello>().ok());
    REQUIRE(master.SendRaw(MessageType::kRunMapTask, "xy").ok());
    REQUIRE(master.SendRaw(MessageType::kPushRun, "").ok());  // not a control message
    REQUIRE(master.Send(Spec(1, dir)).ok());
    REQUIRE(master.Await<msg::JobReady>().ok());  // still serving
    CHECK(master.Count(MessageType::kTaskFailed) == 0);
    REQUIRE(master.Send(msg::Shutdown{"the master is stopping", 3}).ok());
    std::optional<Status> ended = worker.Wait(5s);
    REQUIRE(ended.has_value());
    CHECK(ended->ok());
    CHECK(worker.requested_exit_code() == 3);
    worker.Stop();
    transport->Stop();
    log = captured.text();
  }
  INFO(log);
  CHECK(Contains(log, "bad RunMapTask from the master"));
  CHECK(Contains(log, "ignoring PushRun from the master"));
  CHECK(Contains(log, "the master asked this worker to stop: the master is stopping"));
}

// The shard file a worker hosting the job's one reducer shard saves after one round whose map
// tasks are `tasks` (nodes of the partitions' tree); `done` gets their MapTaskDone reports.
std::string ShardAfterOneRound(const testing::TempDir& dir,
                               const std::vector<shuffle::TreeNode>& tasks,
                               std::vector<msg::MapTaskDone>* done) {
  auto transport = MakeInProcessTransport();
  ScriptedMaster master(transport.get());
  WorkerOptions options;
  options.master_address = master.address();
  options.data_address = "inproc://";
  options.name = "w";
  options.slots = 2;
  options.plugin_cache_dir = dir.File("plugin-cache");
  options.spill_dir = dir.File("spill");
  WorkerService worker(transport.get(), options);
  REQUIRE(worker.Start().ok());
  Result<msg::Hello> hello = master.Await<msg::Hello>();
  REQUIRE(hello.ok());
  msg::JobSpecText text = Spec(1, dir);
  text.yaml =
      "name: combine\n"
      "data:\n"
      "  train: {path: train.csv, format: csv, partitions: 5}\n"
      "model: {type: logistic}\n"
      "update: {rule: sgd, learning_rate: 0.5}\n"
      "training: {epochs: 1}\n"
      "output: {dir: out}\n";
  REQUIRE(master.Send(text).ok());
  REQUIRE(master.Await<msg::JobReady>().ok());
  msg::StartTraining start;
  start.job_id = 1;
  start.num_features = 3;
  start.num_classes = 2;
  start.hosted_shards = {0};
  start.shard_addresses = {hello->data_address};
  start.placement = 1;
  REQUIRE(master.Send(start).ok());
  Result<msg::JobReady> trained = master.Await<msg::JobReady>();
  INFO(trained.status().ToString());
  REQUIRE(trained.ok());
  REQUIRE(trained->phase == msg::JobReady::kTraining);
  int64_t examples = 0;
  for (const shuffle::TreeNode& node : tasks) {
    REQUIRE(master.Send(msg::RunMapTask{1, 0, 0, node.lo, 0, 1, 0.5, node.count}).ok());
    Result<msg::MapTaskDone> d = master.Await<msg::MapTaskDone>();
    INFO(d.status().ToString());
    REQUIRE(d.ok());
    examples += d->examples;
    done->push_back(*d);
  }
  REQUIRE(master.Send(msg::ReduceRound{1, 0, 0, 0, 1, 0.5, examples}).ok());
  REQUIRE(master.Await<msg::ShardCommitted>().ok());
  const std::string path = dir.File("shard-" + std::to_string(tasks.size()));
  REQUIRE(master.Send(msg::SaveShard{1, 0, 1, path}).ok());
  REQUIRE(master.Await<msg::ShardSaved>().ok());
  CHECK(master.Count(MessageType::kTaskFailed) == 0);
  worker.Stop();
  transport->Stop();
  return dir.Read(path);
}

TEST_CASE("a worker sums a node's partitions in tree order and pushes once per shard",
          "[runtime][worker]") {
  testing::TempDir dir;
  // Rows of very different magnitudes, so the gradients' float sums depend on their order.
  std::ostringstream csv;
  for (int r = 0; r < 50; ++r) {
    const double scale = r % 3 == 0 ? 1e5 : r % 3 == 1 ? 1.0 : 1e-4;
    csv << (r % 2) << "," << scale * (r + 1) / 7.0 << "," << scale * (50 - r) / 3.0 << ","
        << (r % 5) - 2 << "\n";
  }
  dir.Write("train.csv", csv.str());
  std::vector<msg::MapTaskDone> leaves_done, node_done, halves_done;
  const std::string by_leaves =
      ShardAfterOneRound(dir, {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}}, &leaves_done);
  const std::string by_node = ShardAfterOneRound(dir, {{0, 8}}, &node_done);
  const std::string by_halves = ShardAfterOneRound(dir, {{4, 4}, {0, 4}}, &halves_done);
  CHECK((by_node == by_leaves));  // no byte dump on failure
  CHECK((by_halves == by_leaves));
  REQUIRE(node_done.size() == 1);
  CHECK(node_done[0].partition == 0);
  CHECK(node_done[0].partition_count == 8);
  CHECK(node_done[0].examples == 50);
  // The same statistics, added in tree order: ((p0 + p1) + (p2 + p3)) + p4.
  const double tree_loss = ((leaves_done[0].loss_sum + leaves_done[1].loss_sum) +
                            (leaves_done[2].loss_sum + leaves_done[3].loss_sum)) +
                           leaves_done[4].loss_sum;
  CHECK(node_done[0].loss_sum == tree_loss);
  CHECK(halves_done[0].loss_sum + halves_done[1].loss_sum == tree_loss);
  // One push instead of five: the node's run holds each key once.
  int64_t leaves_bytes = 0;
  for (const msg::MapTaskDone& d : leaves_done) leaves_bytes += d.bytes_sent;
  CHECK(node_done[0].bytes_sent * 4 < leaves_bytes);
}

// A peer's end of a data-plane connection: records the PushAcks it gets.
struct AckInbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<msg::PushAck> acks;

  ConnectionHandler Handler(const std::shared_ptr<AckInbox>& self) {
    ConnectionHandler h;
    h.on_message = [weak = std::weak_ptr<AckInbox>(self)](const std::shared_ptr<Connection>&,
                                                          MessageType type, std::string payload) {
      auto inbox = weak.lock();
      if (!inbox || type != MessageType::kPushAck) return;
      Result<msg::PushAck> ack = msg::DecodeAs<msg::PushAck>(payload);
      std::lock_guard<std::mutex> lock(inbox->mu);
      if (ack.ok()) inbox->acks.push_back(*ack);
      inbox->cv.notify_all();
    };
    return h;
  }
  std::optional<msg::PushAck> Await(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, 10s, [&] { return acks.size() >= n; })) return std::nullopt;
    return acks[n - 1];
  }
};

// A run of `floats` values for the job's shard 0, values_crc32c set as a map task sets it.
std::shared_ptr<msg::PushRun> RunOf(size_t floats, int64_t partition) {
  auto push = std::make_shared<msg::PushRun>();
  push->job_id = 1;
  push->step = 1;
  push->partition = partition;
  push->keys = {ParamKey(0, 0).packed()};
  push->offsets = {0, static_cast<int64_t>(floats)};
  for (size_t i = 0; i < floats; ++i) push->values.push_back(0.5f * static_cast<float>(i % 97));
  push->values_crc32c = Crc32c(push->values.data(), push->values.size() * sizeof(float));
  return push;
}

TEST_CASE("a shard host refuses a run whose floats fail their checksum, and keeps a sound one",
          "[runtime][worker]") {
  const std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  // Small runs are stored on the transport thread, large ones on the shard pool: both check.
  const size_t floats = GENERATE(size_t{100}, size_t{100000});
  INFO(kind << ", " << floats << " floats");
  testing::TempDir dir;
  dir.Write("train.csv", "1,0.5,0.25\n0,1,2\n1,3,4\n");
  std::unique_ptr<Transport> transport;
  if (kind == "tcp") {
    TcpOptions tcp;
    tcp.handshake.secret = "worker test secret";
    transport = MakeTcpTransport(tcp).value();
  } else {
    transport = MakeInProcessTransport();
  }
  const std::string any = kind == "tcp" ? "127.0.0.1:0" : "inproc://";
  {
    ScriptedMaster master(transport.get(), any);
    WorkerOptions options;
    options.master_address = master.address();
    options.data_address = any;
    options.name = "w";
    options.slots = 1;
    options.plugin_cache_dir = dir.File("plugin-cache");
    options.spill_dir = dir.File("spill");
    WorkerService worker(transport.get(), options);
    REQUIRE(worker.Start().ok());
    Result<msg::Hello> hello = master.Await<msg::Hello>();
    REQUIRE(hello.ok());
    msg::JobSpecText text = Spec(1, dir);
    text.yaml.replace(text.yaml.find("partitions: 1"), 13, "partitions: 2");
    REQUIRE(master.Send(text).ok());
    REQUIRE(master.Await<msg::JobReady>().ok());
    msg::StartTraining start;
    start.job_id = 1;
    start.num_features = 2;
    start.num_classes = 2;
    start.hosted_shards = {0};
    start.shard_addresses = {hello->data_address};
    start.placement = 1;
    REQUIRE(master.Send(start).ok());
    REQUIRE(master.Await<msg::JobReady>().ok());

    auto inbox = std::make_shared<AckInbox>();
    std::promise<Result<std::shared_ptr<Connection>>> connected;
    transport->Connect(hello->data_address, inbox->Handler(inbox),
                       [&](Result<std::shared_ptr<Connection>> c) { connected.set_value(c); });
    Result<std::shared_ptr<Connection>> peer = connected.get_future().get();
    REQUIRE(peer.ok());

    // One float flipped after the run's checksum was taken, past the frame's checksum (which
    // covers the bytes as sent): what a bit flip in a worker's memory would do.
    std::shared_ptr<msg::PushRun> corrupted = RunOf(floats, 0);
    std::string bytes = *msg::Encode(*corrupted);
    bytes[bytes.size() - 3] ^= 0x10;
    REQUIRE((*peer)->Send(MessageType::kPushRun, bytes).ok());
    std::optional<msg::PushAck> refused = inbox->Await(1);
    REQUIRE(refused.has_value());
    CHECK(refused->error == "the run of partitions [0, +1) for step 1 fails its checksum");
    size_t acks = 1;
    if (kind == "inproc") {
      // Handed over in memory, not encoded: still checked against its checksum.
      std::shared_ptr<msg::PushRun> changed = RunOf(floats, 0);
      changed->values.back() += 1;
      REQUIRE(
          (*peer)->SendGather(MessageType::kPushRun, *msg::EncodeGather(std::move(changed))).ok());
      std::optional<msg::PushAck> also_refused = inbox->Await(++acks);
      REQUIRE(also_refused.has_value());
      CHECK(also_refused->error == "the run of partitions [0, +1) for step 1 fails its checksum");
    }
    // Not stored: the sound run of the same node is the first, not a duplicate.
    REQUIRE((*peer)->SendGather(MessageType::kPushRun, *msg::EncodeGather(RunOf(floats, 0))).ok());
    std::optional<msg::PushAck> kept = inbox->Await(++acks);
    REQUIRE(kept.has_value());
    CHECK(kept->error.empty());
    CHECK(kept->duplicate == 0);
    (*peer)->Close();
    worker.Stop();
  }
  transport->Stop();
}

}  // namespace
}  // namespace mrtrain::runtime
