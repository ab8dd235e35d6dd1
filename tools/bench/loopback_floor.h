#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"

// The two-process loopback setup that the network benchmarks share, and the floor they are
// measured against: raw TCP throughput over 127.0.0.1 between two processes.
namespace mrtrain::bench {

// The other end of a loopback measurement: a forked child process that listens on 127.0.0.1
// (port 0) and tells the parent its address through a pipe. Two processes, not two threads, so
// sender and receiver each have their own allocator and scheduler entity, as a mapper and a
// reducer shard host on one machine would.
//
// The child runs `serve` and exits with its return value (by _exit: no atexit handlers or
// static destructors of the parent's state run twice). It is killed if the parent dies first.
// Not thread-safe; the child's announce function must be called at most once.
class PeerProcess {
 public:
  // Calls announce(address) once it listens; returns the child's exit code (0 for success).
  using Serve = std::function<int(const std::function<void(const std::string&)>& announce)>;

  // Forks the child and waits for its address. Errors: kIOError when the pipe or fork fails,
  // kUnavailable when the child exits without announcing.
  // REQUIRES: the calling thread is the process's only thread (fork copies only the caller, so
  // a lock another thread held would stay locked forever in the child).
  static Result<std::unique_ptr<PeerProcess>> Start(Serve serve);

  // Kills the child if it is still running (Wait() was not called).
  ~PeerProcess();
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  // "127.0.0.1:40123", as announced.
  const std::string& address() const { return address_; }

  // Waits for the child to exit. kInternal when it failed (non-zero exit or a signal).
  Status Wait();

 private:
  PeerProcess(pid_t pid, std::string address) : pid_(pid), address_(std::move(address)) {}

  pid_t pid_;  // -1 once reaped
  std::string address_;
};

struct LoopbackFloorOptions {
  int64_t bytes = int64_t{1} << 30;        // sent per measurement
  int64_t write_bytes = int64_t{4} << 20;  // per write() and per read()
  int repeats = 3;
};

// GB/s (1e9 bytes per second) of each measurement, in order.
struct LoopbackFloor {
  std::vector<double> gbps;
  double best() const;
};

// Raw loopback TCP: a receiver process accepts one connection and reads and discards
// `bytes` with reads of write_bytes, then replies one byte; the sender times from its first
// write to that reply. Plain blocking Boost.Asio sockets with TCP_NODELAY, as the transport
// sets, and nothing else: no framing, checksum or serialization. Errors: kIOError from the
// sockets, kInternal when the receiver fails. REQUIRES: as PeerProcess::Start.
Result<LoopbackFloor> MeasureLoopbackFloor(const LoopbackFloorOptions& options);

}  // namespace mrtrain::bench
