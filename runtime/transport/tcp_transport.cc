// The TCP transport: sessions (one per connection) and the transport that owns them. Both live in
// this one file on purpose: every translation unit that includes Asio costs 10-15 s to compile,
// and nothing outside needs to see either class (tcp_transport.h exposes only the factory).
#include "runtime/transport/tcp_transport.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <atomic>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "engine/base/check.h"
#include "engine/base/log.h"
#include "runtime/protocol/frame.h"
#include "runtime/protocol/handshake.h"
#include "runtime/transport/error_code_status.h"
#include "runtime/transport/send_budget.h"
#include "runtime/transport/warning_limiter.h"

namespace mrtrain::runtime {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// An authenticated connection reads in chunks this large; before that, a chunk holds one
// handshake frame at most, so a connection that never authenticates costs a few KiB.
constexpr size_t kReadChunkBytes = 256 << 10;
constexpr size_t kHandshakeReadBytes = kFrameHeaderBytes + kMaxHandshakeFramePayloadBytes;
// Warnings about refused and failed connections: this many per interval, then a count.
constexpr uint64_t kWarningBurst = 5;
constexpr std::chrono::seconds kWarningInterval{1};
// After a failed accept (out of file descriptors, say), wait before trying again, not spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// A connection that failed its handshake gets this long to carry our Reject frame out.
constexpr std::chrono::milliseconds kRejectLinger{1000};
// Below this many timers no sweep for cancelled ones runs (see TcpTransport::timers_).
constexpr size_t kMinTimerSweep = 256;

std::shared_ptr<spdlog::logger> Log() { return Logger("transport"); }

Result<std::pair<std::string, std::string>> SplitHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return InvalidArgumentError("address \"" + address + "\" is not host:port");
  }
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:7070
  }
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoul(port) > 65535) {
    return InvalidArgumentError("address \"" + address + "\" has a bad port");
  }
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(host, port);
}

std::string EndpointString(const tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

class TcpTransport;

// One connection: its socket, handshake, frame decoder and outbound queue. It lives as long as
// the handlers it has in flight (each captures shared_from_this()) or a caller holds it; the
// transport keeps every session that is not yet closed in its `sessions_`.
//
// Threads: everything but Send() and Close() runs on the transport thread. The outbound queue
// is shared with senders under mu_. Once closed (Fail()), a session owns no Asio object and
// never touches its transport again, so callers may keep it past the transport's life.
class TcpSession : public Connection, public std::enable_shared_from_this<TcpSession> {
 public:
  // An accepted connection (server side of the handshake).
  TcpSession(TcpTransport* transport, tcp::socket socket, ConnectionHandler handler);
  // An outgoing connection to `address` (client side); `done` reports the outcome.
  TcpSession(TcpTransport* transport, std::string address, ConnectionHandler handler,
             Transport::ConnectCallback done);

  Status Send(MessageType type, std::string payload) override;
  Status SendGather(MessageType type, GatherPayload payload) override;
  std::optional<uint32_t> delivered_crc32c() const override { return delivered_crc32c_; }
  void Close() override;
  const std::string& peer() const override { return peer_; }

  // Transport thread only.
  void StartAccepted();
  void StartConnect(const std::string& host, const std::string& port);
  // Closes at once; an open connection gets on_closed(why).
  void Fail(const Status& why);
  // Accepted and not authenticated yet: counted against max_pending_connections.
  bool pending() const { return pending_; }
  // What this session has allocated (itself, its buffers), for TcpStats.
  size_t reserved_bytes() const {
    return sizeof(*this) + read_buf_.capacity() + decoder_.reserved_bytes();
  }

 private:
  enum class State { kConnecting, kHandshaking, kOpen, kClosing, kClosed };

  // One queued frame: its header, payload head and tail go out as buffers of one async_write.
  struct OutFrame {
    std::string header;
    GatherPayload payload;
    bool budgeted;     // counted in budget_ (messages are, handshake frames are not)
    size_t written = 0;  // bytes the sender already wrote itself (see Enqueue)
    size_t size() const { return header.size() + payload.size(); }
  };

  void OnConnected(const error_code& ec);
  void ArmTimer(std::chrono::milliseconds delay, State expected, Status why);
  void WatchFrame();
  void ArmFrameTimer(std::chrono::steady_clock::duration delay);
  void EndPending();
  void ReadMore();
  void OnRead(const error_code& ec, size_t n);
  bool DrainFrames();  // false once the session is closed
  bool OnHandshakeFrame(const Frame& frame);
  void OnAuthenticated();
  void Deliver(Frame frame);
  void ProtocolError(const Status& why);
  void RejectAndClose(const Status& why);
  void BeginClose(const Status& why, std::chrono::milliseconds linger);

  // Queues a frame; from any thread. False when the session is closed.
  bool Enqueue(OutFrame frame);
  void WriteNext();
  void OnWritten(const error_code& ec);

  template <typename F>
  void Guarded(const char* callback, F&& f);

  // Constant after construction.
  TcpTransport* const transport_;  // never used once state_ is kClosed
  const ConnectionHandler handler_;
  const TransportLimits limits_;
  const std::chrono::milliseconds handshake_timeout_;
  const std::chrono::milliseconds close_timeout_;
  const std::chrono::milliseconds frame_timeout_;
  const std::thread::id io_thread_;
  asio::io_context::executor_type executor_;  // used only under mu_ while !outbox_closed_
  std::string peer_;                          // set before the connection is handed out

  // Transport thread only.
  State state_;
  bool opened_ = false;
  bool pending_ = false;                      // see pending()
  bool frame_timer_armed_ = false;            // the timer watches a frame in progress (kOpen)
  std::optional<uint32_t> delivered_crc32c_;  // set while on_message runs
  std::chrono::steady_clock::time_point last_read_;  // when bytes last arrived (kOpen)
  Transport::ConnectCallback done_;                  // client side, until it has been called
  Handshake handshake_;
  FrameDecoder decoder_{kMaxHandshakeFramePayloadBytes};
  std::vector<char> read_buf_;
  Status close_status_;                      // what on_closed reports when a graceful close ends
  std::optional<tcp::socket> socket_;        // reset by Fail(), as are the timer and resolver
  std::optional<asio::steady_timer> timer_;  // handshake, frame in progress, then close deadline
  std::optional<tcp::resolver> resolver_;

  // Close() called or closed: Send() fails, no more on_message. Any thread.
  std::atomic<bool> closing_{false};
  SendBudget budget_;

  std::mutex mu_;
  std::deque<OutFrame> outbox_;  // guarded by mu_; front() is being written when writing_
  bool writing_ = false;         // guarded by mu_; a WriteNext is posted or a write in flight
  bool outbox_closed_ = false;   // guarded by mu_; set by Fail()
  // The socket's descriptor while the connection is open and authenticated, for senders that
  // write a frame themselves (Enqueue); -1 before and from Fail() on, which closes the socket
  // only after setting it, under mu_, so no sender writes to a closed (or reused) descriptor.
  int direct_fd_ = -1;  // guarded by mu_
};

class TcpTransport : public Transport {
 public:
  explicit TcpTransport(const TcpOptions& options);
  ~TcpTransport() override;

  Result<std::string> Listen(const std::string& address, ConnectionHandler handler) override;
  void Connect(const std::string& address, ConnectionHandler handler,
               ConnectCallback done) override;
  void Post(std::function<void()> fn) override;
  TimerHandle RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) override;
  bool InTransportThread() const override { return std::this_thread::get_id() == thread_id_; }
  void Stop() override;

  // For sessions, on the transport thread.
  const TcpOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }
  std::thread::id thread_id() const { return thread_id_; }
  bool stopped() const { return stopped_; }
  void Forget(const std::shared_ptr<TcpSession>& session) { sessions_.erase(session); }
  // An accepted session authenticated or closed before it did.
  void EndPending() { --pending_; }
  // Logs a warning about a peer, subject to the flood limit.
  void WarnPeer(const std::string& line);
  // Off the transport thread.
  TcpStats Stats();

 private:
  struct Listener {
    Listener(asio::io_context& io, ConnectionHandler h, std::string a)
        : acceptor(io), retry(io), handler(std::move(h)), address(std::move(a)) {}
    tcp::acceptor acceptor;
    asio::steady_timer retry;
    ConnectionHandler handler;
    std::string address;
  };

  void Accept(const std::shared_ptr<Listener>& listener);
  void ShutdownOnThread();
  void SweepCancelledTimers();
  void SummarizeWarnings();

  // Constant after construction.
  const TcpOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::thread::id thread_id_;

  std::atomic<bool> stopped_{false};  // Stop() was called: nothing new starts
  std::once_flag join_once_;

  // Transport thread only.
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::set<std::shared_ptr<TcpSession>> sessions_;
  // RunAfter timers not yet fired, with their handles. A cancelled one is swept (its asio timer
  // cancelled) once the map has doubled since the last sweep: reply and step timeouts of minutes
  // are armed per task and step and nearly all cancelled, and would otherwise pile up until due.
  std::map<std::shared_ptr<asio::steady_timer>, TimerHandle> timers_;
  size_t sweep_timers_at_ = kMinTimerSweep;
  size_t pending_ = 0;    // sessions accepted and not yet authenticated
  uint64_t refused_ = 0;  // connections closed at accept: too many pending
  WarningLimiter warnings_{kWarningBurst, kWarningInterval};
  asio::steady_timer summary_timer_{io_};  // armed while warnings are held back
  std::string last_held_;                  // the latest warning held back
};

// ---- TcpSession ----

TcpSession::TcpSession(TcpTransport* transport, tcp::socket socket, ConnectionHandler handler)
    : transport_(transport),
      handler_(std::move(handler)),
      limits_(transport->options().limits),
      handshake_timeout_(transport->options().handshake_timeout),
      close_timeout_(transport->options().close_timeout),
      frame_timeout_(transport->options().frame_timeout),
      io_thread_(transport->thread_id()),
      executor_(transport->io().get_executor()),
      state_(State::kHandshaking),
      handshake_(HandshakeRole::kServer, transport->options().handshake),
      read_buf_(kHandshakeReadBytes),
      socket_(std::move(socket)),
      timer_(transport->io()),
      budget_(limits_.send_budget_bytes, limits_.send_timeout) {
  error_code ec;
  tcp::endpoint remote = socket_->remote_endpoint(ec);
  peer_ = ec ? "unknown peer" : EndpointString(remote);
}

TcpSession::TcpSession(TcpTransport* transport, std::string address, ConnectionHandler handler,
                       Transport::ConnectCallback done)
    : transport_(transport),
      handler_(std::move(handler)),
      limits_(transport->options().limits),
      handshake_timeout_(transport->options().handshake_timeout),
      close_timeout_(transport->options().close_timeout),
      frame_timeout_(transport->options().frame_timeout),
      io_thread_(transport->thread_id()),
      executor_(transport->io().get_executor()),
      peer_(std::move(address)),
      state_(State::kConnecting),
      done_(std::move(done)),
      handshake_(HandshakeRole::kClient, transport->options().handshake),
      read_buf_(kHandshakeReadBytes),
      socket_(std::in_place, transport->io()),
      timer_(transport->io()),
      resolver_(std::in_place, transport->io()),
      budget_(limits_.send_budget_bytes, limits_.send_timeout) {}

Status TcpSession::Send(MessageType type, std::string payload) {
  return SendGather(type, GatherPayload(std::move(payload)));
}

Status TcpSession::SendGather(MessageType type, GatherPayload payload) {
  auto t = static_cast<uint16_t>(type);
  if (payload.size() > limits_.max_frame_payload_bytes) {
    return InvalidArgumentError("cannot send " + MessageTypeName(t) + " of " +
                                std::to_string(payload.size()) + " bytes to " + peer_ +
                                ": over the frame limit of " +
                                std::to_string(limits_.max_frame_payload_bytes));
  }
  if (closing_) return Status(StatusCode::kUnavailable, "connection to " + peer_ + " is closed");
  // The checksum is computed here, on the sender's thread, not on the transport thread.
  const uint32_t crc = payload.Crc32c();
  OutFrame frame{EncodeFrameHeader(t, payload.size(), crc), std::move(payload), true};
  size_t bytes = frame.size();
  MRTRAIN_RETURN_IF_ERROR(budget_.Acquire(bytes, std::this_thread::get_id() != io_thread_, peer_));
  if (closing_ || !Enqueue(std::move(frame))) {
    budget_.Release(bytes);
    return Status(StatusCode::kUnavailable, "connection to " + peer_ + " is closed");
  }
  return Status::Ok();
}

void TcpSession::Close() {
  if (closing_.exchange(true)) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (outbox_closed_) return;
  asio::post(executor_,
             [self = shared_from_this()] { self->BeginClose(Status::Ok(), self->close_timeout_); });
}

void TcpSession::StartAccepted() {
  pending_ = true;
  error_code ec;
  socket_->set_option(tcp::no_delay(true), ec);
  socket_->set_option(asio::socket_base::keep_alive(true), ec);
  ArmTimer(handshake_timeout_, State::kHandshaking,
           Status(StatusCode::kDeadlineExceeded, "no handshake from " + peer_ + " within " +
                                                     std::to_string(handshake_timeout_.count()) +
                                                     " ms"));
  Result<std::vector<HandshakeFrame>> first = handshake_.Start();  // nothing for a server
  if (!first.ok()) return Fail(first.status());
  ReadMore();
}

void TcpSession::StartConnect(const std::string& host, const std::string& port) {
  ArmTimer(handshake_timeout_, State::kConnecting,
           Status(StatusCode::kDeadlineExceeded,
                  "could not connect and authenticate to " + peer_ + " within " +
                      std::to_string(handshake_timeout_.count()) + " ms"));
  auto self = shared_from_this();
  error_code ec;
  asio::ip::address ip = asio::ip::make_address(host, ec);
  if (!ec) {
    socket_->async_connect(tcp::endpoint(ip, static_cast<uint16_t>(std::stoul(port))),
                           [self](const error_code& e) { self->OnConnected(e); });
    return;
  }
  resolver_->async_resolve(
      host, port, [self](const error_code& e, const tcp::resolver::results_type& endpoints) {
        if (self->state_ == State::kClosed) return;
        if (e) return self->Fail(ErrorCodeToStatus(e, "resolve " + self->peer_));
        asio::async_connect(
            *self->socket_, endpoints,
            [self](const error_code& e2, const tcp::endpoint&) { self->OnConnected(e2); });
      });
}

void TcpSession::OnConnected(const error_code& ec) {
  if (state_ == State::kClosed) return;
  if (ec) return Fail(ErrorCodeToStatus(ec, "connect to " + peer_));
  error_code ignored;
  socket_->set_option(tcp::no_delay(true), ignored);
  socket_->set_option(asio::socket_base::keep_alive(true), ignored);
  state_ = State::kHandshaking;
  Result<std::vector<HandshakeFrame>> hello = handshake_.Start();
  if (!hello.ok()) return Fail(hello.status());
  for (HandshakeFrame& f : *hello) {
    auto t = static_cast<uint16_t>(f.type);
    Enqueue(OutFrame{EncodeFrameHeader(t, f.payload), GatherPayload(std::move(f.payload)), false});
  }
  ReadMore();
}

// The session's one timer is a deadline for whatever state it was armed in:
//
//   kConnecting/kHandshaking --handshake_timeout--> Fail(kDeadlineExceeded)
//   kClosing                 --close_timeout------> Fail(close status), queued frames dropped
//
// Re-arming cancels the previous wait; a stale expiry finds another state and does nothing.
void TcpSession::ArmTimer(std::chrono::milliseconds delay, State expected, Status why) {
  timer_->expires_after(delay);
  timer_->async_wait([self = shared_from_this(), expected, why](const error_code& ec) {
    if (ec || self->state_ == State::kClosed) return;
    bool handshaking = self->state_ == State::kConnecting || self->state_ == State::kHandshaking;
    bool expected_handshaking = expected == State::kConnecting || expected == State::kHandshaking;
    if (expected_handshaking && handshaking) {
      self->transport_->WarnPeer("closing connection " + self->peer_ + ": " + why.message());
      self->Fail(why);
    } else if (expected == State::kClosing && self->state_ == State::kClosing) {
      self->Fail(self->close_status_);
    }
  });
}

// While a frame is in progress on an open connection the timer watches it:
//
//   bytes of a frame arrive --> armed (if not already)
//   fires: frame complete      --> disarmed
//   fires: bytes came within frame_timeout --> armed again for the rest of the bound
//   fires: frame_timeout without a byte    --> Fail(kDeadlineExceeded)
//
// So the timer is armed once per stall, not once per read.
void TcpSession::WatchFrame() {
  last_read_ = std::chrono::steady_clock::now();
  if (!frame_timer_armed_ && !decoder_.at_frame_boundary()) ArmFrameTimer(frame_timeout_);
}

void TcpSession::ArmFrameTimer(std::chrono::steady_clock::duration delay) {
  frame_timer_armed_ = true;
  timer_->expires_after(delay);
  timer_->async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->state_ != State::kOpen) return;
    self->frame_timer_armed_ = false;
    if (self->decoder_.at_frame_boundary()) return;
    const auto quiet = std::chrono::steady_clock::now() - self->last_read_;
    if (quiet < self->frame_timeout_) return self->ArmFrameTimer(self->frame_timeout_ - quiet);
    self->ProtocolError(Status(
        StatusCode::kDeadlineExceeded,
        "no byte of the frame in progress for " + std::to_string(self->frame_timeout_.count()) +
            " ms (" + std::to_string(self->decoder_.buffered_bytes()) + " bytes of it received)"));
  });
}

void TcpSession::EndPending() {
  if (!pending_) return;
  pending_ = false;
  transport_->EndPending();
}

void TcpSession::ReadMore() {
  socket_->async_read_some(
      asio::buffer(read_buf_),
      [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
}

void TcpSession::OnRead(const error_code& ec, size_t n) {
  if (state_ == State::kClosed || ec == asio::error::operation_aborted) return;
  if (ec) {
    if (state_ == State::kClosing) return Fail(close_status_);
    Status why = ec == asio::error::eof
                     ? Status(StatusCode::kUnavailable,
                              peer_ + " closed the connection" +
                                  (decoder_.at_frame_boundary() ? "" : " in the middle of a frame"))
                     : ErrorCodeToStatus(ec, "connection to " + peer_);
    if (!opened_) {
      transport_->WarnPeer("connection " + peer_ + " ended during the handshake: " + why.message());
    }
    return Fail(why);
  }
  decoder_.Feed(std::string_view(read_buf_.data(), n));
  if (!DrainFrames()) return;
  if (state_ == State::kOpen) WatchFrame();
  ReadMore();
}

bool TcpSession::DrainFrames() {
  for (;;) {
    Result<std::optional<Frame>> next = decoder_.Next();
    if (!next.ok()) {
      ProtocolError(next.status());
      return false;
    }
    if (!next->has_value()) return true;
    Frame& frame = **next;
    if (state_ == State::kHandshaking) {
      if (!OnHandshakeFrame(frame)) return false;
      continue;
    }
    if (IsHandshakeType(frame.type)) {
      ProtocolError(CorruptionError(MessageTypeName(frame.type) + " frame after the handshake"));
      return false;
    }
    Deliver(std::move(frame));
    if (state_ == State::kClosed) return false;
  }
}

bool TcpSession::OnHandshakeFrame(const Frame& frame) {
  Result<std::vector<HandshakeFrame>> replies = handshake_.OnFrame(frame.type, frame.payload);
  if (!replies.ok()) {
    if (frame.type == static_cast<uint16_t>(MessageType::kHandshakeReject)) {
      transport_->WarnPeer("handshake with " + peer_ + " failed: " + replies.status().message());
      Fail(replies.status());
    } else {
      RejectAndClose(replies.status());
    }
    return false;
  }
  for (HandshakeFrame& f : *replies) {
    auto t = static_cast<uint16_t>(f.type);
    Enqueue(OutFrame{EncodeFrameHeader(t, f.payload), GatherPayload(std::move(f.payload)), false});
  }
  if (handshake_.done()) OnAuthenticated();
  return state_ != State::kClosed;
}

void TcpSession::OnAuthenticated() {
  state_ = State::kOpen;
  opened_ = true;
  EndPending();
  timer_->cancel();
  decoder_.set_max_payload_bytes(limits_.max_frame_payload_bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!outbox_closed_) direct_fd_ = socket_->native_handle();
  }
  // Called between reads (from DrainFrames), so the buffer is not in use.
  std::vector<char>(kReadChunkBytes).swap(read_buf_);
  Log()->debug("connection {} authenticated", peer_);
  auto self = shared_from_this();
  if (handler_.on_open) Guarded("on_open", [&] { handler_.on_open(self); });
  if (done_) {
    Transport::ConnectCallback done = std::move(done_);
    done_ = nullptr;
    if (state_ == State::kClosed) {
      done(Status(StatusCode::kUnavailable, "connection to " + peer_ + " closed at once"));
    } else {
      Guarded("Connect callback", [&] { done(std::shared_ptr<Connection>(self)); });
    }
  }
}

void TcpSession::Deliver(Frame frame) {
  // Close() was called, or the transport is stopping: deliver nothing more.
  if (closing_ || transport_->stopped()) return;
  auto self = shared_from_this();
  delivered_crc32c_ = frame.crc32c;
  Guarded("on_message", [&] {
    handler_.on_message(self, static_cast<MessageType>(frame.type), std::move(frame.payload));
  });
  delivered_crc32c_.reset();
}

void TcpSession::ProtocolError(const Status& why) {
  transport_->WarnPeer("closing connection " + peer_ + ": " + why.message());
  Fail(why);
}

void TcpSession::RejectAndClose(const Status& why) {
  transport_->WarnPeer("handshake with " + peer_ + " failed: " + why.message());
  HandshakeFrame reject = Handshake::RejectFrame(why);
  auto t = static_cast<uint16_t>(reject.type);
  Enqueue(OutFrame{EncodeFrameHeader(t, reject.payload), GatherPayload(std::move(reject.payload)),
                   false});
  BeginClose(why, std::min(kRejectLinger, close_timeout_));
}

void TcpSession::BeginClose(const Status& why, std::chrono::milliseconds linger) {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  closing_ = true;
  state_ = State::kClosing;
  close_status_ = why;
  bool idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle = !writing_;
  }
  if (idle) return Fail(why);
  ArmTimer(linger, State::kClosing, why);  // WriteNext() calls Fail() once the queue drains
}

namespace {

// The parts of a frame (header, payload head, tail) past its first `skip` bytes.
std::array<asio::const_buffer, 3> FrameBuffers(const std::string& header,
                                               const GatherPayload& payload, size_t skip) {
  std::array<asio::const_buffer, 3> buffers = {
      asio::buffer(header), asio::buffer(payload.head),
      asio::buffer(payload.tail.data(), payload.tail.size())};
  for (asio::const_buffer& b : buffers) {
    const size_t cut = std::min(skip, b.size());
    b += cut;
    skip -= cut;
  }
  return buffers;
}

}  // namespace

bool TcpSession::Enqueue(OutFrame frame) {
  bool release = false;
  size_t bytes = frame.size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outbox_closed_) return false;
    // Nothing queued or being written: the sender writes the frame itself, without waking the
    // transport thread for it (a hop of each message's latency, and on a busy machine a wait
    // for a core). Whatever the socket does not take at once goes to the queue as before, as
    // do errors, which the transport thread's write then reports.
    if (!writing_ && direct_fd_ >= 0) {
      std::array<asio::const_buffer, 3> parts = FrameBuffers(frame.header, frame.payload, 0);
      iovec iov[3];
      for (size_t i = 0; i < parts.size(); ++i) {
        iov[i].iov_base = const_cast<void*>(parts[i].data());
        iov[i].iov_len = parts[i].size();
      }
      msghdr message{};
      message.msg_iov = iov;
      message.msg_iovlen = parts.size();
      const ssize_t n = ::sendmsg(direct_fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) frame.written = static_cast<size_t>(n);
      release = frame.written == bytes;
    }
    if (!release) {
      outbox_.push_back(std::move(frame));
      if (!writing_) {
        writing_ = true;
        asio::post(executor_, [self = shared_from_this()] { self->WriteNext(); });
      }
    }
  }
  if (release && frame.budgeted) budget_.Release(bytes);
  return true;
}

void TcpSession::WriteNext() {
  if (state_ == State::kClosed) return;
  std::array<asio::const_buffer, 3> buffers;
  bool have_frame = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (outbox_.empty()) {
      writing_ = false;
    } else {
      // deque::push_back never moves existing elements, so front() stays put while senders
      // append during the write.
      const OutFrame& front = outbox_.front();
      buffers = FrameBuffers(front.header, front.payload, front.written);
      have_frame = true;
    }
  }
  if (!have_frame) {
    if (state_ == State::kClosing) Fail(close_status_);
    return;
  }
  asio::async_write(*socket_, buffers, [self = shared_from_this()](const error_code& ec, size_t) {
    self->OnWritten(ec);
  });
}

void TcpSession::OnWritten(const error_code& ec) {
  if (state_ == State::kClosed || ec == asio::error::operation_aborted) return;
  if (ec) {
    if (state_ == State::kClosing) return Fail(close_status_);
    return Fail(ErrorCodeToStatus(ec, "write to " + peer_));
  }
  OutFrame done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done = std::move(outbox_.front());
    outbox_.pop_front();
  }
  if (done.budgeted) budget_.Release(done.size());
  WriteNext();
}

void TcpSession::Fail(const Status& why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  closing_ = true;
  std::deque<OutFrame> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    outbox_closed_ = true;
    direct_fd_ = -1;
    dropped.swap(outbox_);
  }
  budget_.Close();
  // Close and destroy every Asio object now: pending operations complete with
  // operation_aborted (their handlers see kClosed and return), and nothing of the io_context
  // outlives the transport inside a session a caller still holds.
  error_code ignored;
  if (socket_) {
    socket_->shutdown(tcp::socket::shutdown_both, ignored);
    socket_->close(ignored);
  }
  socket_.reset();
  timer_.reset();
  resolver_.reset();
  auto self = shared_from_this();
  EndPending();
  transport_->Forget(self);
  if (done_) {
    Transport::ConnectCallback done = std::move(done_);
    done_ = nullptr;
    done(why);
  }
  if (!opened_) return;
  if (why.ok()) {
    Log()->debug("connection {} closed", peer_);
  } else {
    Log()->info("connection {} closed: {}", peer_, why.ToString());
  }
  if (!handler_.on_closed) return;
  try {
    handler_.on_closed(self, why);
  } catch (...) {
    Log()->error("on_closed for {} threw", peer_);
  }
}

template <typename F>
void TcpSession::Guarded(const char* callback, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    Log()->error("{} for {} threw: {}; closing the connection", callback, peer_, e.what());
    Fail(InternalError(std::string(callback) + " threw: " + e.what()));
  } catch (...) {
    Log()->error("{} for {} threw; closing the connection", callback, peer_);
    Fail(InternalError(std::string(callback) + " threw"));
  }
}

// ---- TcpTransport ----

TcpTransport::TcpTransport(const TcpOptions& options)
    : options_(options), work_(asio::make_work_guard(io_)) {
  thread_ = std::thread([this] { io_.run(); });
  thread_id_ = thread_.get_id();
}

TcpTransport::~TcpTransport() {
  MRTRAIN_CHECK(!InTransportThread());
  Stop();
}

Result<std::string> TcpTransport::Listen(const std::string& address, ConnectionHandler handler) {
  if (stopped_)
    return FailedPreconditionError("cannot listen on " + address + ": transport stopped");
  MRTRAIN_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(address));
  error_code ec;
  tcp::resolver resolver(io_);
  tcp::resolver::results_type endpoints =
      resolver.resolve(host_port.first, host_port.second, tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) return ErrorCodeToStatus(ec, "resolve " + address);
  tcp::endpoint endpoint = *endpoints.begin();

  auto listener = std::make_shared<Listener>(io_, std::move(handler), address);
  tcp::acceptor& acceptor = listener->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ErrorCodeToStatus(ec, "listen on " + address);
  tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return ErrorCodeToStatus(ec, "listen on " + address);
  listener->address = EndpointString(bound);
  std::string result = listener->address;
  Log()->info("listening on {}", result);
  asio::post(io_, [this, listener] {
    if (stopped_) return;
    listeners_.push_back(listener);
    Accept(listener);
  });
  return result;
}

void TcpTransport::Accept(const std::shared_ptr<Listener>& listener) {
  listener->acceptor.async_accept([this, listener](const error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopped_) return;
    if (ec) {
      WarnPeer("accept on " + listener->address + " failed: " + ec.message());
      listener->retry.expires_after(kAcceptRetryDelay);
      listener->retry.async_wait([this, listener](const error_code& e) {
        if (!e && !stopped_) Accept(listener);
      });
      return;
    }
    if (pending_ >= options_.max_pending_connections) {
      error_code ec2;
      tcp::endpoint remote = socket.remote_endpoint(ec2);
      const std::string peer = ec2 ? "unknown peer" : EndpointString(remote);
      socket.close(ec2);
      ++refused_;
      WarnPeer("refusing a connection from " + peer + " on " + listener->address + ": " +
               std::to_string(pending_) +
               " connections are already in their handshake (--max-pending-connections)");
      return Accept(listener);
    }
    auto session = std::make_shared<TcpSession>(this, std::move(socket), listener->handler);
    sessions_.insert(session);
    ++pending_;
    session->StartAccepted();
    Accept(listener);
  });
}

void TcpTransport::Connect(const std::string& address, ConnectionHandler handler,
                           ConnectCallback done) {
  if (stopped_) {
    return done(FailedPreconditionError("cannot connect to " + address + ": transport stopped"));
  }
  asio::post(io_, [this, address, handler = std::move(handler), done = std::move(done)]() mutable {
    if (stopped_) {
      return done(
          Status(StatusCode::kUnavailable, "cannot connect to " + address + ": transport stopped"));
    }
    Result<std::pair<std::string, std::string>> host_port = SplitHostPort(address);
    if (!host_port.ok()) return done(host_port.status());
    auto session = std::make_shared<TcpSession>(this, address, std::move(handler), std::move(done));
    sessions_.insert(session);
    session->StartConnect(host_port->first, host_port->second);
  });
}

void TcpTransport::Post(std::function<void()> fn) {
  if (stopped_) return;
  asio::post(io_, [this, fn = std::move(fn)] {
    if (stopped_) return;
    try {
      fn();
    } catch (const std::exception& e) {
      Log()->error("a posted function threw: {}", e.what());
    } catch (...) {
      Log()->error("a posted function threw");
    }
  });
}

TimerHandle TcpTransport::RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  TimerHandle handle(std::move(fn));
  if (stopped_) return handle;
  // The asio timer holds only the handle: a cancelled timer's function is already gone.
  asio::post(io_, [this, delay, handle] {
    if (stopped_) return;
    auto timer = std::make_shared<asio::steady_timer>(io_, delay);
    if (timers_.size() >= sweep_timers_at_) SweepCancelledTimers();
    timers_.emplace(timer, handle);
    timer->async_wait([this, timer, handle](const error_code& ec) {
      timers_.erase(timer);
      if (ec || stopped_) return;
      try {
        handle.Fire();
      } catch (const std::exception& e) {
        Log()->error("a timer function threw: {}", e.what());
      } catch (...) {
        Log()->error("a timer function threw");
      }
    });
  });
  return handle;
}

// Stop() from any thread, the transport thread included:
//
//   stopped_ = true            Post/RunAfter/Connect/Listen refuse; queued posts are skipped
//   ShutdownOnThread()         on the transport thread: close listeners, Fail() every session
//                              (on_closed / done with kUnavailable), cancel timers, drop the
//                              work guard
//   io_.run() drains           every remaining handler sees stopped_ or a closed session and
//                              returns at once; run() ends, so does the thread
//   join                       unless called on the transport thread (the destructor joins)
void TcpTransport::Stop() {
  if (!stopped_.exchange(true)) {
    if (InTransportThread()) {
      ShutdownOnThread();
    } else {
      asio::post(io_, [this] { ShutdownOnThread(); });
    }
  }
  if (InTransportThread()) return;
  std::call_once(join_once_, [this] {
    if (thread_.joinable()) thread_.join();
  });
}

void TcpTransport::WarnPeer(const std::string& line) {
  if (warnings_.Admit(WarningLimiter::Clock::now())) {
    Log()->warn("{}", line);
    return;
  }
  last_held_ = line;
  std::optional<WarningLimiter::Clock::time_point> due = warnings_.summary_due();
  if (!due || summary_timer_.expiry() == *due) return;  // the summary is already scheduled
  summary_timer_.expires_at(*due);
  summary_timer_.async_wait([this](const error_code& ec) {
    if (!ec && !stopped_) SummarizeWarnings();
  });
}

void TcpTransport::SummarizeWarnings() {
  const uint64_t held = warnings_.Summarize(WarningLimiter::Clock::now());
  if (held == 0) return;
  Log()->warn("{} more warnings about connections in the last {} s were not logged; the last: {}",
              held, kWarningInterval.count(), last_held_);
}

void TcpTransport::SweepCancelledTimers() {
  for (auto it = timers_.begin(); it != timers_.end();) {
    if (it->second.cancelled()) {
      it->first->cancel();  // its handler, which keeps the timer alive, runs with operation_aborted
      it = timers_.erase(it);
    } else {
      ++it;
    }
  }
  sweep_timers_at_ = std::max(kMinTimerSweep, 2 * timers_.size());
}

TcpStats TcpTransport::Stats() {
  auto stats = std::make_shared<std::promise<TcpStats>>();
  std::future<TcpStats> future = stats->get_future();
  asio::post(io_, [this, stats] {
    TcpStats s;
    s.pending_connections = pending_;
    s.refused_connections = refused_;
    s.pending_timers = timers_.size();
    for (const auto& session : sessions_) {
      if (session->pending()) s.pending_bytes += session->reserved_bytes();
    }
    stats->set_value(s);
  });
  // A stopped transport may never run the count.
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return TcpStats();
  return future.get();
}

void TcpTransport::ShutdownOnThread() {
  error_code ignored;
  summary_timer_.cancel();
  for (const auto& listener : listeners_) {
    listener->acceptor.close(ignored);
    listener->retry.cancel();
  }
  listeners_.clear();
  auto sessions = sessions_;
  for (const auto& session : sessions) {
    session->Fail(Status(StatusCode::kUnavailable, "transport stopped"));
  }
  sessions_.clear();
  for (const auto& [timer, handle] : timers_) timer->cancel();
  timers_.clear();
  work_.reset();
}

}  // namespace

TcpStats GetTcpStats(Transport& transport) {
  auto* tcp = dynamic_cast<TcpTransport*>(&transport);
  if (!tcp || tcp->stopped() || tcp->InTransportThread()) return TcpStats();
  return tcp->Stats();
}

Result<std::unique_ptr<Transport>> MakeTcpTransport(const TcpOptions& options) {
  MRTRAIN_RETURN_IF_ERROR(ValidateHandshakeConfig(options.handshake));
  if (options.handshake.insecure) {
    Log()->warn(
        "TCP transport without a cluster secret (--insecure): any process that can "
        "reach these ports can join the cluster");
  }
  return std::unique_ptr<Transport>(std::make_unique<TcpTransport>(options));
}

}  // namespace mrtrain::runtime
