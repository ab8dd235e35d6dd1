#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/base/status.h"
#include "runtime/protocol/frame.h"
#include "runtime/protocol/handshake.h"
#include "runtime/transport/transport.h"

namespace mrtrain::testing {

// Every wait in these tests is bounded by this.
inline constexpr std::chrono::seconds kWait{30};

struct Received {
  std::shared_ptr<runtime::Connection> connection;
  runtime::MessageType type;
  std::string payload;
};

// Records what a ConnectionHandler sees, for tests to wait on. Thread-safe. The handlers share
// the inbox's state, so they stay valid whichever of the inbox and the transport goes first.
class Inbox {
 public:
  Inbox();

  // A handler that records into this inbox; `on_message` (optional) also runs for each message,
  // on the transport thread, before it is recorded.
  runtime::ConnectionHandler Handler(std::function<void(const std::shared_ptr<runtime::Connection>&,
                                                        runtime::MessageType, const std::string&)>
                                         on_message = nullptr);

  // Waits until `done()` holds (checked under the inbox lock); false on timeout.
  bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = kWait);
  bool WaitForMessages(size_t n);
  bool WaitForOpened(size_t n);
  bool WaitForClosed(size_t n);

  std::vector<Received> messages();
  std::vector<std::shared_ptr<runtime::Connection>> opened();
  std::vector<Status> closed();
  // Message callbacks that ran on a thread other than the transport's (should stay 0).
  int off_thread_callbacks() const;
  // REQUIRES: `t` outlives the handlers' use (set before connecting).
  void set_transport(runtime::Transport* t);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Connect() made synchronous, bounded by kWait.
Result<std::shared_ptr<runtime::Connection>> ConnectAndWait(runtime::Transport& transport,
                                                            const std::string& address,
                                                            runtime::ConnectionHandler handler);

// A deterministic payload of n bytes, different for each seed.
std::string Pattern(size_t n, uint32_t seed);

// A plain blocking TCP client socket, for playing a broken or hostile peer. Every read is
// bounded by a receive timeout.
class RawSocket {
 public:
  RawSocket() = default;
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // Connects to "127.0.0.1:port".
  Status Connect(const std::string& address);
  // Writes all bytes; false if the peer has gone.
  bool Write(const std::string& bytes);
  // True if the peer closes (EOF or reset) within `timeout`, discarding what it sends before.
  bool ClosedByPeerWithin(std::chrono::milliseconds timeout);
  // Runs the client side of the handshake over this socket.
  Status Handshake(const runtime::HandshakeConfig& config);
  // Reads one frame (bounded by kWait).
  Result<std::pair<uint16_t, std::string>> ReadFrame();

 private:
  int fd_ = -1;
  runtime::FrameDecoder decoder_{runtime::kMaxHandshakeFramePayloadBytes};
};

// A TCP server on 127.0.0.1 that completes the server side of the handshake on the first
// connection and then never reads again: the slowest possible reducer.
class StalledServer {
 public:
  explicit StalledServer(runtime::HandshakeConfig config);
  ~StalledServer();
  const std::string& address() const { return address_; }
  // Waits until the handshake on the accepted connection is done.
  bool WaitForHandshake();

 private:
  int listen_fd_ = -1;
  int conn_fd_ = -1;
  std::string address_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool handshake_done_ = false;
  Status status_;
};

}  // namespace mrtrain::testing
