#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "engine/base/status.h"

namespace mrtrain::tools {

// The two byte streams of a proxied connection, or both.
enum class Direction {
  kClientToServer,
  kServerToClient,
  kBoth,
};

enum class Fault {
  kPass,          // forward bytes unchanged
  kDelay,         // forward each chunk `delay` after it was read (latency, not a rate limit)
  kBlackHole,     // read and forward nothing, keep both sockets open: the peer hears silence
  kDropMidFrame,  // forward `after_bytes` more bytes, then reset both sockets (RST)
  kDuplicate,     // send whole frames twice (frame-aware, see frame_rewriter.h)
  kReorder,       // swap consecutive whole frames (frame-aware, see frame_rewriter.h)
};

// A fault and its parameter. Build one with the factories: Mode::Delay(200ms).
struct Mode {
  Fault fault = Fault::kPass;
  std::chrono::milliseconds delay{0};   // kDelay
  uint64_t after_bytes = 0;             // kDropMidFrame, counted from when the mode was set
  std::optional<uint64_t> frame_index;  // kDuplicate, kReorder: only this frame (or the pair
                                        // starting at it); nullopt: every frame (pair)

  static Mode Pass() { return Mode(); }
  static Mode Delay(std::chrono::milliseconds delay);
  static Mode BlackHole();
  static Mode DropMidFrame(uint64_t after_bytes);
  static Mode Duplicate(std::optional<uint64_t> frame_index = std::nullopt);
  static Mode Reorder(std::optional<uint64_t> frame_index = std::nullopt);
};

// A TCP proxy for network-fault tests: every connection accepted on the listen address is
// connected to the target, and bytes are copied both ways through the fault in force for each
// direction. Faults change at any time from any thread and apply to bytes read from then on.
//
//   client ──► [listen]  FaultProxy  ──► target      (client→server: Direction::kClientToServer)
//          ◄──                       ◄──             (server→client: Direction::kServerToClient)
//
// Per direction of each connection: one read in flight, at most a few MiB queued for writing
// (then reading pauses), one write in flight. Frames are parsed in both directions
// (runtime/protocol/FORMAT.md, handshake frames included); a stream that is not frames passes
// through unchanged under every frame-aware fault.
//
// Bytes read while black-holed are held, not lost (TCP would retransmit them after a partition
// heals): setting another mode forwards them under that mode. A client end-of-stream is passed
// on as a half-close; a read or write error resets both sockets.
//
// The proxy runs its own Boost.Asio io_context on one thread, started by Start() and joined by
// Stop(). Every method is thread-safe. Connecting to the target times out after 5 s (the client
// is then reset).
class FaultProxy {
 public:
  // Snapshot of the counters; each is exact, the set is not read atomically.
  struct Counters {
    uint64_t connections_accepted = 0;
    uint64_t bytes_client_to_server = 0;  // written to the target, duplicates included
    uint64_t bytes_server_to_client = 0;  // written to clients
    uint64_t frames_duplicated = 0;       // frames sent a second time
    uint64_t frame_pairs_reordered = 0;   // pairs sent second-first
  };

  // `target_host_port`: "host:port" to connect each client to, resolved by Start().
  explicit FaultProxy(std::string target_host_port);
  ~FaultProxy();  // Stop()
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // Resolves the target, listens on `listen` ("host:port"; port 0 lets the OS pick) and starts
  // the I/O thread. Returns the bound address, e.g. "127.0.0.1:41234".
  // Errors: kInvalidArgument (malformed address), kUnavailable (cannot resolve or bind),
  // kFailedPrecondition (already started, or stopped).
  Result<std::string> Start(const std::string& listen = "127.0.0.1:0");

  // Closes the listener and every connection and joins the I/O thread, within a few seconds
  // even if a handler misbehaves. Idempotent; later calls to other methods do nothing.
  void Stop();

  // Sets the fault for one direction or both. Applies to bytes read from now on, in every open
  // connection and every later one; bytes already read keep the fault they were read under.
  void SetMode(const Mode& mode, Direction direction = Direction::kBoth);

  // Resets every open connection (SO_LINGER 0, then close: both peers see a RST). Returns once
  // done, or after 2 s at most. New connections are still accepted.
  void CutAll();

  Counters counters() const;

 private:
  class Impl;  // keeps Boost.Asio out of this header
  std::unique_ptr<Impl> impl_;
};

}  // namespace mrtrain::tools
