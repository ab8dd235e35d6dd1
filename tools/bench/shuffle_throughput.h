#pragma once

#include <cstdint>
#include <vector>

#include "engine/base/status.h"

namespace mrtrain::bench {

struct ShuffleOptions {
  int64_t params = 50'000'000;  // floats of the model (tensor 0), all pushed by every map task
  int64_t block_floats = 4096;  // floats per ParamKey block
  int shards = 1;               // reducer shards: one connection and one PushRun per task each
  int senders = 1;              // map tasks pushing at once, one thread each
  int tasks = 3;                // map tasks per sender, timed
  int warmup_tasks = 1;         // map tasks per sender before those, not timed
};

struct ShuffleThroughput {
  int64_t payload_bytes = 0;      // float payload pushed: params * 4 * senders * tasks
  double seconds = 0;             // pushing time, summed over the waves of tasks
  std::vector<double> wave_gbps;  // each wave's GB/s (1e9 bytes per second), in order

  double gbps() const {
    return seconds > 0 ? static_cast<double>(payload_bytes) / seconds / 1e9 : 0;
  }
};

// Shuffle throughput through the real data plane, between two processes on 127.0.0.1:
//
//   this process (mapper)                          child process (reducer shard host)
//   `senders` threads, each one map task a wave    TcpTransport, Listen("127.0.0.1:0")
//     SetRun -> Encode -> Connection::Send  ──►    the transport thread hands each PushRun to
//     (one PushRun per shard, one connection         a pool (the worker's shard pool), which
//      per shard, shared by the senders)             does Decode -> TakeRun -> send PushAck
//     wait for every shard's PushAck        ◄──
//
// Both ends use MakeTcpTransport with the HMAC handshake and a secret generated for the run,
// which the child inherits through fork. The runs of a wave are built before its clock starts:
// they stand for a map task's output buffer, which the shuffle starts from; the clock stops
// when the last PushAck arrives. Warm-up waves go first, so both processes' heaps already hold
// blocks of a run's size, as in a worker that has run tasks before (a first task also pays
// for faulting in fresh pages). The child checks that it decoded every float.
// Errors: those of the transport and the codec; kDeadlineExceeded when acks stop coming;
// kInternal when the child fails. REQUIRES: as PeerProcess::Start (loopback_floor.h).
Result<ShuffleThroughput> MeasureShuffle(const ShuffleOptions& options);

}  // namespace mrtrain::bench
