#include "tools/bench/shuffle_throughput.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/base/crc32c.h"
#include "engine/base/log.h"
#include "engine/tensor/param_key.h"
#include "runtime/protocol/handshake.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/tcp_transport.h"
#include "runtime/transport/transport.h"
#include "shuffle/buffer/run.h"
#include "tools/bench/loopback_floor.h"

namespace mrtrain::bench {
namespace {

using runtime::Connection;
using runtime::ConnectionHandler;
using runtime::MessageType;
namespace msg = runtime::msg;

constexpr uint64_t kJobId = 1;
// Far beyond any healthy wave (seconds), short enough that a stuck run ends on its own.
constexpr std::chrono::seconds kAckTimeout{300};

std::shared_ptr<spdlog::logger> Log() { return Logger("bench"); }

runtime::TcpOptions TcpOptionsWithSecret(const std::string& secret) {
  runtime::TcpOptions options;
  options.handshake.secret = secret;
  return options;
}

// ---- The child: every reducer shard in one process ----

// What the child's threads record for its main thread. Thread-safe.
class ShardHostTally {
 public:
  void AddFloats(int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    floats_ += n;
  }
  void MarkFailed() {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = true;
  }
  void Closed() {
    std::lock_guard<std::mutex> lock(mu_);
    ++closed_;
    changed_.notify_all();
  }
  void WaitClosed(int connections) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return closed_ >= connections; });
  }
  // True when nothing failed and exactly `floats` were decoded.
  bool Check(int64_t floats) {
    std::lock_guard<std::mutex> lock(mu_);
    if (floats_ != floats) {
      Log()->error("the shard host decoded {} floats, expected {}", floats_, floats);
    }
    return !failed_ && floats_ == floats;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int closed_ = 0;       // guarded by mu_
  bool failed_ = false;  // guarded by mu_
  int64_t floats_ = 0;   // guarded by mu_
};

// What a reducer shard host does with a push: decode it fully, check its floats' checksum (split
// off the frame's, as the worker does), take the run, acknowledge it.
Status AcceptPush(Connection& connection, const std::string& payload,
                  std::optional<uint32_t> payload_crc32c, ShardHostTally* tally) {
  msg::PushRun push;
  MRTRAIN_RETURN_IF_ERROR(msg::Decode(payload, &push));
  if (msg::ValuesCrc32c(payload, push, payload_crc32c) != push.values_crc32c) {
    return CorruptionError("a run fails its checksum");
  }
  shuffle::Run run = msg::TakeRun(&push);
  tally->AddFloats(static_cast<int64_t>(run.values.size()));
  msg::PushAck ack;
  ack.job_id = push.job_id;
  ack.step = push.step;
  ack.partition = push.partition;
  ack.shard = push.shard;
  ack.attempt = push.attempt;
  return runtime::SendMessage(connection, ack);
}

// Threads that accept pushes, as the worker's shard pool does: the transport thread hands each
// payload over and goes back to reading. Thread-safe; Join() before the tally goes away.
class PushPool {
 public:
  PushPool(int threads, ShardHostTally* tally) : tally_(tally) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~PushPool() { Join(); }

  void Add(std::shared_ptr<Connection> from, std::string payload, std::optional<uint32_t> crc) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Item{std::move(from), std::move(payload), crc});
    ready_.notify_one();
  }
  // Accepts what is queued, then ends the threads.
  void Join() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      ready_.notify_all();
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Loop() {
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      ready_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto [from, payload, crc] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      Status accepted = AcceptPush(*from, payload, crc, tally_);
      if (accepted.ok()) continue;
      Log()->error("shard host: {}", accepted.ToString());
      tally_->MarkFailed();
      from->Close();
    }
  }

  ShardHostTally* const tally_;
  std::mutex mu_;
  std::condition_variable ready_;
  struct Item {
    std::shared_ptr<Connection> from;
    std::string payload;
    std::optional<uint32_t> crc;  // the frame's, as the transport checked it
  };
  std::deque<Item> queue_;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::vector<std::thread> threads_;
};

int ServeShards(const std::function<void(const std::string&)>& announce,
                const ShuffleOptions& options, const std::string& secret) {
  // Both outlive the transport, whose callbacks use them.
  ShardHostTally tally;
  PushPool pool(static_cast<int>(std::max(2u, std::thread::hardware_concurrency())), &tally);
  Result<std::unique_ptr<runtime::Transport>> transport =
      runtime::MakeTcpTransport(TcpOptionsWithSecret(secret));
  if (!transport.ok()) {
    Log()->error("shard host: {}", transport.status().ToString());
    return 1;
  }
  ConnectionHandler handler;
  handler.on_message = [&](const std::shared_ptr<Connection>& c, MessageType type,
                           std::string payload) {
    if (type == MessageType::kPushRun) {
      return pool.Add(c, std::move(payload), c->delivered_crc32c());
    }
    Log()->error("shard host: got a {}", runtime::MessageTypeName(static_cast<uint16_t>(type)));
    tally.MarkFailed();
    c->Close();
  };
  // The mapper ends the run by closing its connections: the peer-closed status is expected.
  handler.on_closed = [&tally](const std::shared_ptr<Connection>&, const Status& why) {
    if (!why.ok() && why.code() != StatusCode::kUnavailable) tally.MarkFailed();
    tally.Closed();
  };
  Result<std::string> address = (*transport)->Listen("127.0.0.1:0", handler);
  if (!address.ok()) {
    Log()->error("shard host: {}", address.status().ToString());
    return 1;
  }
  announce(*address);
  tally.WaitClosed(options.shards);
  (*transport)->Stop();
  pool.Join();
  const int64_t floats = options.params * options.senders * (options.warmup_tasks + options.tasks);
  return tally.Check(floats) ? 0 : 2;
}

// ---- The parent: map tasks pushing runs ----

// The PushAcks received, counted per (step, partition), for the sender threads to wait on.
// Thread-safe: the transport thread adds, senders wait.
class AckBook {
 public:
  void Add(int64_t step, int64_t partition) {
    std::lock_guard<std::mutex> lock(mu_);
    ++acks_[{step, partition}];
    changed_.notify_all();
  }
  // Wakes every waiter with `why`; the first failure sticks.
  void Fail(const Status& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.ok()) failure_ = why;
    changed_.notify_all();
  }
  // Waits until (step, partition) has `count` acks. kDeadlineExceeded after kAckTimeout.
  Status WaitFor(int64_t step, int64_t partition, int count) {
    std::unique_lock<std::mutex> lock(mu_);
    bool done = changed_.wait_for(lock, kAckTimeout, [&] {
      return !failure_.ok() || acks_[{step, partition}] >= count;
    });
    if (!failure_.ok()) return failure_;
    if (!done) {
      return Status(StatusCode::kDeadlineExceeded, "no acks for partition " +
                                                       std::to_string(partition) + " of step " +
                                                       std::to_string(step) + " within " +
                                                       std::to_string(kAckTimeout.count()) + " s");
    }
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::pair<int64_t, int64_t>, int> acks_;  // guarded by mu_
  Status failure_;                                   // guarded by mu_
};

ConnectionHandler MapperHandler(AckBook* acks) {
  ConnectionHandler handler;
  handler.on_message = [acks](const std::shared_ptr<Connection>&, MessageType type,
                              std::string payload) {
    if (type != MessageType::kPushAck) {
      return acks->Fail(CorruptionError("the mapper got a " +
                                        runtime::MessageTypeName(static_cast<uint16_t>(type))));
    }
    Result<msg::PushAck> ack = msg::DecodeAs<msg::PushAck>(payload);
    if (!ack.ok()) return acks->Fail(ack.status());
    acks->Add(ack->step, ack->partition);
  };
  handler.on_closed = [acks](const std::shared_ptr<Connection>& c, const Status& why) {
    acks->Fail(why.ok() ? Status(StatusCode::kUnavailable, "connection to " + c->peer() + " closed")
                        : why);
  };
  return handler;
}

Result<std::shared_ptr<Connection>> ConnectTo(runtime::Transport& transport,
                                              const std::string& address,
                                              const ConnectionHandler& handler) {
  std::promise<Result<std::shared_ptr<Connection>>> connected;
  std::future<Result<std::shared_ptr<Connection>>> result = connected.get_future();
  transport.Connect(address, handler, [&connected](Result<std::shared_ptr<Connection>> c) {
    connected.set_value(std::move(c));
  });
  return result.get();
}

// The gradient of the whole model, as a map task's output buffer would hold it: shard s gets
// the s-th contiguous range of blocks (range partitioning), keys ascending.
std::vector<shuffle::Run> BuildRuns(const std::vector<float>& gradient,
                                    const ShuffleOptions& options) {
  const int64_t params = static_cast<int64_t>(gradient.size());
  const int64_t blocks = (params + options.block_floats - 1) / options.block_floats;
  std::vector<shuffle::Run> runs(static_cast<size_t>(options.shards));
  for (int s = 0; s < options.shards; ++s) {
    const int64_t first = blocks * s / options.shards, last = blocks * (s + 1) / options.shards;
    shuffle::Run& run = runs[static_cast<size_t>(s)];
    run.keys.reserve(static_cast<size_t>(last - first));
    run.offsets.reserve(static_cast<size_t>(last - first + 1));
    run.values.reserve(static_cast<size_t>(std::min(params, last * options.block_floats) -
                                           first * options.block_floats));
    for (int64_t b = first; b < last; ++b) {
      const int64_t begin = b * options.block_floats;
      run.Append(ParamKey(0, static_cast<uint64_t>(b)), gradient.data() + begin,
                 std::min(options.block_floats, params - begin));
    }
  }
  return runs;
}

// One map task's push: a PushRun per shard, sent as the worker sends it (its floats checksummed
// once and written in place), then the wait for every shard's ack.
Status PushTask(const std::vector<std::shared_ptr<Connection>>& shards,
                std::vector<shuffle::Run> runs, int64_t step, int64_t partition, AckBook* acks) {
  for (size_t s = 0; s < shards.size(); ++s) {
    auto push = std::make_shared<msg::PushRun>();
    push->job_id = kJobId;
    push->round = step - 1;
    push->step = step;
    push->partition = partition;
    push->shard = static_cast<int64_t>(s);
    push->values_crc32c = Crc32c(runs[s].values.data(), runs[s].values.size() * sizeof(float));
    msg::SetRun(std::move(runs[s]), push.get());
    MRTRAIN_ASSIGN_OR_RETURN(runtime::GatherPayload payload, msg::EncodeGather(std::move(push)));
    MRTRAIN_RETURN_IF_ERROR(shards[s]->SendGather(MessageType::kPushRun, std::move(payload)));
  }
  return acks->WaitFor(step, partition, static_cast<int>(shards.size()));
}

// One wave: every sender pushes one map task at once. Returns its seconds.
Result<double> PushWave(const std::vector<std::shared_ptr<Connection>>& shards,
                        const std::vector<float>& gradient, const ShuffleOptions& options,
                        int64_t step, AckBook* acks) {
  std::vector<std::vector<shuffle::Run>> runs;
  for (int i = 0; i < options.senders; ++i) runs.push_back(BuildRuns(gradient, options));
  std::vector<Status> results(runs.size());
  std::vector<std::thread> senders;
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < runs.size(); ++i) {
    senders.emplace_back([&, i] {
      results[i] = PushTask(shards, std::move(runs[i]), step, static_cast<int64_t>(i), acks);
    });
  }
  for (std::thread& t : senders) t.join();
  std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  for (const Status& s : results) MRTRAIN_RETURN_IF_ERROR(s);
  return seconds.count();
}

Status CheckOptions(const ShuffleOptions& o) {
  if (o.params <= 0 || o.block_floats <= 0 || o.shards <= 0 || o.senders <= 0 || o.tasks <= 0 ||
      o.warmup_tasks < 0) {
    return InvalidArgumentError(
        "shuffle: params, block size, shards, senders, tasks must be > 0, warm-up tasks >= 0");
  }
  return Status::Ok();
}

}  // namespace

Result<ShuffleThroughput> MeasureShuffle(const ShuffleOptions& options) {
  MRTRAIN_RETURN_IF_ERROR(CheckOptions(options));
  MRTRAIN_ASSIGN_OR_RETURN(std::string secret, runtime::GenerateClusterSecret());
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<PeerProcess> shard_host,
                           PeerProcess::Start([&](const auto& announce) {
                             return ServeShards(announce, options, secret);
                           }));
  AckBook acks;  // outlives the transport, whose callbacks use it
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Transport> transport,
                           runtime::MakeTcpTransport(TcpOptionsWithSecret(secret)));
  const ConnectionHandler handler = MapperHandler(&acks);
  std::vector<std::shared_ptr<Connection>> shards;
  for (int s = 0; s < options.shards; ++s) {
    MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<Connection> c,
                             ConnectTo(*transport, shard_host->address(), handler));
    shards.push_back(std::move(c));
  }

  std::vector<float> gradient(static_cast<size_t>(options.params));
  for (size_t i = 0; i < gradient.size(); ++i) gradient[i] = static_cast<float>(i % 1000) * 1e-3f;
  ShuffleThroughput result;
  const int64_t wave_bytes = options.params * static_cast<int64_t>(sizeof(float)) * options.senders;
  for (int wave = 0; wave < options.warmup_tasks + options.tasks; ++wave) {
    MRTRAIN_ASSIGN_OR_RETURN(double seconds, PushWave(shards, gradient, options, wave + 1, &acks));
    if (wave < options.warmup_tasks) continue;
    result.seconds += seconds;
    result.payload_bytes += wave_bytes;
    result.wave_gbps.push_back(static_cast<double>(wave_bytes) / seconds / 1e9);
  }
  // Closing the connections tells the shard host the run is over; it exits after its checks.
  for (const auto& c : shards) c->Close();
  transport->Stop();
  MRTRAIN_RETURN_IF_ERROR(shard_host->Wait());
  return result;
}

}  // namespace mrtrain::bench
