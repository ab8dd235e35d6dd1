#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "engine/base/status.h"
#include "runtime/protocol/gather_payload.h"
#include "runtime/protocol/protocol_constants.h"

// The one interface master and workers use to reach each other, so local mode (in-process) and
// distributed mode (TCP) run the same code. See in_process_transport.h and tcp_transport.h.
//
// Threads. A Transport runs one thread of its own, the transport thread. Every callback runs on
// it, one at a time: ConnectionHandler callbacks, Connect's `done`, Post()ed functions and
// RunAfter() timers. Code driven only by callbacks therefore needs no locks. Callbacks must not
// block (no waiting on other threads, no long computation: hand heavy work to a compute pool,
// which Post()s the result back) and must not throw; a callback that throws anyway has its
// connection closed with kInternal and an error logged.
//
// Lifetimes. The Transport owns its listeners and live connections. Callbacks may run until
// Stop() returns (on_closed runs during it), so whatever they refer to must outlive Stop() or the
// Transport. A std::shared_ptr<Connection> handed out may be kept past Close(), Stop() or the
// Transport's destruction: it then refuses to send and touches nothing of the Transport. A
// connection keeps its handler (and what the handler captures) until the connection is destroyed,
// so a handler that owns its connections should capture weakly to avoid a reference cycle.
namespace mrtrain::runtime {

class Connection;

// Callbacks for the connections of one Listen() or one Connect(). Each connection keeps its own
// copy. Only on_message is required.
struct ConnectionHandler {
  // Once per connection, after the handshake and before any on_message: for Listen(), each
  // accepted connection; for Connect(), just before `done` gets the connection.
  std::function<void(const std::shared_ptr<Connection>&)> on_open;

  // Once per frame the peer sent, in the order it sent them.
  std::function<void(const std::shared_ptr<Connection>&, MessageType type, std::string payload)>
      on_message;

  // Exactly once per connection that was opened, last of its callbacks:
  //   OK                  this side called Close(), and the queued frames were written (or the
  //                       close timeout ran out);
  //   kUnavailable        the peer closed or reset the connection, or the transport stopped;
  //   kCorruption         the peer broke the protocol (bad frame or checksum, a handshake frame
  //                       after the handshake);
  //   kInternal           a callback threw.
  std::function<void(const std::shared_ptr<Connection>&, const Status&)> on_closed;

  // True: on_message may get a message object instead of bytes. A transport within one process
  // (in-process) then hands over the message a sender gave with SendGather
  // (GatherPayload::message) without encoding or decoding it: on_message gets an empty payload
  // and Connection::TakeDeliveredMessage() returns the object, of the message type's struct
  // (messages.h). False: always bytes.
  bool takes_messages = false;
};

// How much a connection buffers and how long a sender waits for a slow peer.
struct TransportLimits {
  // A frame's payload may not be longer (for both sending and receiving).
  uint32_t max_frame_payload_bytes = kDefaultMaxFramePayloadBytes;
  // Bytes queued on one connection (sent by the caller, not yet written to the socket or
  // delivered) beyond which Send() waits; see Connection::Send.
  size_t send_budget_bytes = 64u << 20;
  // The longest Send() waits for the queue to drain below the budget.
  std::chrono::milliseconds send_timeout{60000};
};

// One established, authenticated connection. Thread-safe: Send() and Close() may be called from
// any thread.
class Connection {
 public:
  virtual ~Connection() = default;

  // Queues one frame. Frames of one connection are written, and delivered, in Send() order.
  // Returns OK once the frame is queued: that says nothing about delivery, which only a reply
  // confirms. Errors:
  //   kInvalidArgument    payload longer than TransportLimits::max_frame_payload_bytes;
  //   kUnavailable        the connection is closing or closed (Close(), the peer, Stop());
  //   kDeadlineExceeded   the queue stayed over the budget for send_timeout.
  // Backpressure: when the connection already queues send_budget_bytes or more, Send() called
  // off the transport thread BLOCKS until the queue drains below the budget, so a slow peer
  // makes its senders wait instead of buffering without bound. On the transport thread it never
  // blocks (that would deadlock: the transport thread drains the queue) and queues beyond the
  // budget; callbacks should therefore only send replies bounded by what they received, and
  // leave bulk sending (map outputs) to other threads. A frame larger than the whole budget is
  // accepted when the queue is empty.
  virtual Status Send(MessageType type, std::string payload) = 0;

  // The same for a payload in pieces (a run's floats in place): the peer receives the bytes of
  // payload.Join(). TCP writes them with one gather write and takes the frame's checksum from
  // payload.Crc32c(), so a producer that knows its tail's checksum has the tail read only by
  // the socket; this default joins them and calls Send.
  virtual Status SendGather(MessageType type, GatherPayload payload) {
    return Send(type, payload.Join());
  }

  // Inside on_message, on the transport thread: the CRC32C of the payload being delivered,
  // which the transport has checked against its frame's; nullopt where nothing was checksummed
  // (in-process). With Crc32cCombine a receiver checks a checksum of part of the payload (a
  // run's values_crc32c) without reading those bytes again.
  virtual std::optional<uint32_t> delivered_crc32c() const { return std::nullopt; }

  // Inside on_message, on the transport thread, for a handler that takes_messages: the message
  // handed over in memory instead of bytes (then the payload is empty), else nullptr. The
  // connection lets go of it, so the caller may be its only owner (and then move out of it).
  virtual std::shared_ptr<const void> TakeDeliveredMessage() { return nullptr; }

  // Closes the connection: frames already queued are still written (bounded by the
  // transport's close timeout), then on_closed(OK) runs on the transport thread. Send() fails
  // from the moment Close() is called, and no on_message starts after Close() returns. Safe to
  // call more than once and after the peer has gone.
  virtual void Close() = 0;

  // The peer's address for logs: "127.0.0.1:40123", "inproc://master (client 2)".
  virtual const std::string& peer() const = 0;
};

// A timer started by Transport::RunAfter(). The handle owns the timer's function until it runs
// or is cancelled; the transport keeps a copy of the handle until the timer is due. Cancel()
// drops the function at once, so whatever it captured is freed then and not when the timer would
// have come due (a reply timeout of minutes armed per task held every finished task's captures
// that long, and a long-lived worker grew with its task rate). Thread-safe.
class TimerHandle {
 public:
  TimerHandle() = default;
  explicit TimerHandle(std::function<void()> fn) : state_(std::make_shared<State>()) {
    state_->fn = std::move(fn);
  }

  // For transports, when the timer is due: runs the function unless it was cancelled; at most
  // once however often it is called.
  void Fire() const {
    if (!state_) return;
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->cancelled) return;
      fn = std::move(state_->fn);
      state_->fn = nullptr;
    }
    if (fn) fn();
  }

  // The function will not run if Cancel() is called on the transport thread before it does;
  // from another thread it may already be running. Idempotent; no-op on a default handle.
  void Cancel() {
    if (!state_) return;
    std::function<void()> dropped;  // destroyed outside the lock: its captures may be large
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->cancelled = true;
    dropped.swap(state_->fn);
  }
  bool cancelled() const {
    if (!state_) return false;
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->cancelled;
  }

 private:
  struct State {
    std::mutex mu;
    std::function<void()> fn;  // guarded by mu
    bool cancelled = false;    // guarded by mu
  };
  std::shared_ptr<State> state_;
};

class Transport {
 public:
  using ConnectCallback = std::function<void(Result<std::shared_ptr<Connection>>)>;

  virtual ~Transport() = default;

  // Starts accepting connections at `address` ("host:port" for TCP, port 0 picks a free one;
  // "inproc://name" in-process, "inproc://" picks a name), each served by a copy of `handler`.
  // Returns the bound address, to hand to peers. Synchronous; callable from any thread.
  // Errors: kInvalidArgument (malformed address), kUnavailable (the address is in use),
  // kIOError (the OS refused), kFailedPrecondition (after Stop()).
  virtual Result<std::string> Listen(const std::string& address, ConnectionHandler handler) = 0;

  // Opens a connection to `address` and runs the handshake, within a bounded time. `done` runs
  // once on the transport thread, with the connection (after handler.on_open) or the error:
  // kUnavailable (refused, unreachable, nothing listening), kDeadlineExceeded (no handshake in
  // time), kFailedPrecondition (wrong secret, version or mode: retrying will not help),
  // kCorruption (the peer does not speak the protocol). Retrying is the caller's choice.
  // After Stop(), `done` runs at once on the calling thread with kFailedPrecondition.
  virtual void Connect(const std::string& address, ConnectionHandler handler,
                       ConnectCallback done) = 0;

  // Runs `fn` on the transport thread, after the callbacks already queued. Dropped (destroyed
  // unrun) once Stop() has been called.
  virtual void Post(std::function<void()> fn) = 0;

  // Runs `fn` on the transport thread after `delay`, unless cancelled or stopped first: the
  // bound for every wait (a reply that never comes, a heartbeat that stops).
  virtual TimerHandle RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) = 0;

  // True on the transport thread.
  virtual bool InTransportThread() const = 0;

  // Stops listening, closes every connection (each open one gets on_closed(kUnavailable,
  // "transport stopped")), fails pending connects, drops pending posts and timers, and ends the
  // transport thread. Returns promptly; idempotent. From a callback it does the same but returns
  // before the transport thread ends (the destructor joins it).
  // The destructor calls Stop(). REQUIRES: the Transport is not destroyed on its own thread.
  virtual void Stop() = 0;
};

// Encodes `message` (a struct of runtime/protocol/messages.h, found by argument-dependent lookup)
// and sends it. Errors: those of Encode and Connection::Send.
template <typename M>
Status SendMessage(Connection& connection, const M& message) {
  MRTRAIN_ASSIGN_OR_RETURN(std::string payload, Encode(message));
  return connection.Send(M::kType, std::move(payload));
}

}  // namespace mrtrain::runtime
