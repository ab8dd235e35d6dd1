// The proxy and its connections live in this one file: every translation unit that includes Asio
// is slow to compile, and nothing outside needs to see a connection.
#include "tools/faultproxy/fault_proxy.h"

#include <sys/ioctl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <set>
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

#include "engine/base/log.h"
#include "tools/faultproxy/frame_rewriter.h"

namespace mrtrain::tools {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunkBytes = 64 << 10;
// A direction stops reading while this much waits to be written (a slow peer, a long delay).
constexpr size_t kMaxQueuedBytes = 4 << 20;
constexpr std::chrono::seconds kConnectTimeout{5};
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// Before a drop resets a connection, it waits (polling) this long at most for the allowed bytes
// to leave our send buffer: a RST discards whatever is still in it.
constexpr std::chrono::milliseconds kDrainPoll{1};
constexpr std::chrono::milliseconds kDrainLimit{500};
// CutAll() and Stop() wait this long at most for the I/O thread.
constexpr std::chrono::seconds kSyncTimeout{2};

std::shared_ptr<spdlog::logger> Log() { return Logger("faultproxy"); }

Result<std::pair<std::string, std::string>> SplitHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
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
  return std::make_pair(host, port);
}

Result<std::vector<tcp::endpoint>> Resolve(asio::io_context& io, const std::string& address,
                                           bool passive) {
  MRTRAIN_ASSIGN_OR_RETURN(auto host_port, SplitHostPort(address));
  error_code ec;
  tcp::resolver resolver(io);
  auto flags = passive ? tcp::resolver::passive : tcp::resolver::flags();
  auto results = resolver.resolve(host_port.first, host_port.second, flags, ec);
  if (ec || results.empty()) {
    return UnavailableError("resolve " + address + ": " +
                            (ec ? ec.message() : std::string("no address")));
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  return endpoints;
}

std::string EndpointString(const tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

FrameFault FrameFaultOf(const Mode& mode) {
  if (mode.fault == Fault::kDuplicate) return FrameFault::kDuplicate;
  if (mode.fault == Fault::kReorder) return FrameFault::kReorder;
  return FrameFault::kNone;
}

constexpr int kClientToServer = 0;
constexpr int kServerToClient = 1;

class Connection;

// The proxy's state (FaultProxy::Impl). Members touched only on the I/O thread say so; the rest
// are guarded as marked or atomic.
class ProxyCore {
 public:
  using Counters = FaultProxy::Counters;

  explicit ProxyCore(std::string target)
      : target_(std::move(target)),
        work_(asio::make_work_guard(io_)),
        acceptor_(io_),
        accept_retry_(io_) {}

  Result<std::string> Start(const std::string& listen);
  void Stop();
  void SetMode(const Mode& mode, Direction direction);
  void CutAll();
  Counters counters() const;

  // For connections, on the I/O thread.
  asio::io_context& io() { return io_; }
  const std::vector<tcp::endpoint>& target_endpoints() const { return target_endpoints_; }
  std::pair<Mode, uint64_t> CurrentMode(int direction) const;  // the mode and its generation
  void CountBytes(int direction, size_t n) { bytes_[direction] += n; }
  void CountFrames(uint64_t duplicated, uint64_t reordered) {
    frames_duplicated_ += duplicated;
    frame_pairs_reordered_ += reordered;
  }
  void Forget(const std::shared_ptr<Connection>& connection) { connections_.erase(connection); }
  const std::string& target() const { return target_; }

 private:
  void Accept();
  void KickAll();
  void CutAllOnThread();
  void ShutdownOnThread();
  bool InIoThread() const { return std::this_thread::get_id() == thread_id_; }

  // Constant after construction.
  const std::string target_;

  // The context comes first so it outlives every socket and timer below.
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  tcp::acceptor acceptor_;                             // I/O thread once started
  asio::steady_timer accept_retry_;                    // I/O thread
  std::vector<tcp::endpoint> target_endpoints_;        // constant once started
  std::set<std::shared_ptr<Connection>> connections_;  // I/O thread
  uint64_t next_connection_id_ = 0;                    // I/O thread

  // Start and Stop, guarded by lifecycle_mu_.
  std::mutex lifecycle_mu_;
  std::thread thread_;
  std::thread::id thread_id_;
  std::future<void> finished_;  // ready once io_.run() has returned
  std::atomic<bool> running_{false};
  bool stopped_ = false;

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::array<Mode, 2> modes_;
  std::array<uint64_t, 2> generations_ = {0, 0};

  std::atomic<uint64_t> connections_accepted_{0};
  std::array<std::atomic<uint64_t>, 2> bytes_ = {};
  std::atomic<uint64_t> frames_duplicated_{0};
  std::atomic<uint64_t> frame_pairs_reordered_{0};
};

// One proxied connection: the client socket, the target socket and a pump each way.
//
//   read (src) ─► FrameRewriter ─► queue of chunks, each with a release time ─► write (dst)
//
// A pump reads a chunk only when no read is in flight, its queue is short and it is not
// black-holed; it writes the queue's front once its release time has come, one write in flight.
// All on the I/O thread; handlers hold shared_from_this(), the proxy's set holds the rest.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `proxy` outlives every handler: Stop() joins the I/O thread before the proxy goes.
  Connection(ProxyCore* proxy, tcp::socket client, uint64_t id)
      : proxy_(proxy),
        id_(id),
        client_(std::move(client)),
        server_(proxy->io()),
        connect_timer_(proxy->io()),
        drain_timer_(proxy->io()),
        pumps_{Pump(kClientToServer, &client_, &server_, proxy->io()),
               Pump(kServerToClient, &server_, &client_, proxy->io())} {}

  void Start();
  // The mode changed: forward what a black hole held, release held frames, resume reading.
  void Kick();
  // Closes both sockets: with a RST if `abrupt`, else with a FIN.
  void Close(bool abrupt, const char* why);

 private:
  enum class ChunkKind { kData, kEndOfStream, kReset };
  struct Chunk {
    ChunkKind kind;
    std::string bytes;
    Clock::time_point release;
  };
  struct Input {  // what one read returned
    std::string bytes;
    bool end_of_stream = false;
  };
  struct Pump {
    Pump(int dir, tcp::socket* from, tcp::socket* to, asio::io_context& io)
        : direction(dir), src(from), dst(to), buf(kReadChunkBytes), timer(io) {}
    int direction;
    tcp::socket* src;
    tcp::socket* dst;
    std::vector<char> buf;
    FrameRewriter rewriter;
    std::deque<Chunk> queue;
    size_t queued_bytes = 0;
    std::optional<Input> parked;  // read while black-holed
    uint64_t generation = ~uint64_t{0};
    uint64_t drop_budget = 0;
    bool reading = false;
    bool writing = false;
    bool waiting = false;      // for the front chunk's release time
    bool read_done = false;    // end of stream read, or dropping
    bool write_done = false;   // end of stream passed on
    asio::steady_timer timer;  // release times
  };

  void OnConnected(const error_code& ec);
  Mode ModeFor(Pump& p);
  void Read(Pump& p);
  void OnRead(Pump& p, const error_code& ec, size_t n);
  void Forward(Pump& p, Input input, const Mode& mode);
  void Enqueue(Pump& p, ChunkKind kind, std::string bytes, Clock::time_point release);
  void Write(Pump& p);
  void OnWritten(Pump& p, const error_code& ec, size_t n);
  void ResetWhenSent(tcp::socket* dst, Clock::time_point deadline);

  ProxyCore* proxy_;
  uint64_t id_;
  tcp::socket client_;
  tcp::socket server_;
  asio::steady_timer connect_timer_;
  asio::steady_timer drain_timer_;
  std::array<Pump, 2> pumps_;  // [kClientToServer], [kServerToClient]
  bool connected_ = false;
  bool dropping_ = false;  // a drop fired: nothing more moves, the reset follows
  bool closed_ = false;
};

void Connection::Start() {
  auto self = shared_from_this();
  connect_timer_.expires_after(kConnectTimeout);
  connect_timer_.async_wait([self](const error_code& ec) {
    if (!ec && !self->connected_) self->Close(true, "connecting to the target timed out");
  });
  asio::async_connect(
      server_, proxy_->target_endpoints(),
      [self](const error_code& ec, const tcp::endpoint&) { self->OnConnected(ec); });
}

void Connection::OnConnected(const error_code& ec) {
  if (closed_) return;
  connect_timer_.cancel();
  if (ec) {
    Log()->warn("connection {}: connect to {} failed: {}", id_, proxy_->target(), ec.message());
    return Close(true, "target unreachable");
  }
  connected_ = true;
  error_code ignored;
  client_.set_option(tcp::no_delay(true), ignored);
  server_.set_option(tcp::no_delay(true), ignored);
  for (Pump& p : pumps_) Read(p);
}

void Connection::Kick() {
  if (closed_ || dropping_ || !connected_) return;
  for (Pump& p : pumps_) {
    Mode mode = ModeFor(p);
    if (mode.fault == Fault::kBlackHole) continue;
    if (p.parked) {
      Input input = std::move(*p.parked);
      p.parked.reset();
      Forward(p, std::move(input), mode);
    } else {
      std::string released;
      p.rewriter.Release(FrameFaultOf(mode), &released);
      Enqueue(p, ChunkKind::kData, std::move(released), Clock::now());
    }
    Write(p);
    Read(p);
  }
}

void Connection::Close(bool abrupt, const char* why) {
  if (closed_) return;
  closed_ = true;
  Log()->debug("connection {}: {} ({})", id_, abrupt ? "reset" : "closed", why);
  error_code ignored;
  for (tcp::socket* socket : {&client_, &server_}) {
    if (!socket->is_open()) continue;
    if (abrupt) socket->set_option(asio::socket_base::linger(true, 0), ignored);
    socket->close(ignored);
  }
  connect_timer_.cancel();
  drain_timer_.cancel();
  for (Pump& p : pumps_) p.timer.cancel();
  proxy_->Forget(shared_from_this());
}

// Applies the proxy's current mode for p's direction; a new mode restarts the drop budget.
Mode Connection::ModeFor(Pump& p) {
  auto [mode, generation] = proxy_->CurrentMode(p.direction);
  if (generation != p.generation) {
    p.generation = generation;
    p.drop_budget = mode.after_bytes;
  }
  return mode;
}

void Connection::Read(Pump& p) {
  if (closed_ || dropping_ || !connected_ || p.reading || p.read_done || p.parked ||
      p.queued_bytes >= kMaxQueuedBytes || ModeFor(p).fault == Fault::kBlackHole) {
    return;
  }
  p.reading = true;
  p.src->async_read_some(
      asio::buffer(p.buf),
      [self = shared_from_this(), &p](const error_code& ec, size_t n) { self->OnRead(p, ec, n); });
}

void Connection::OnRead(Pump& p, const error_code& ec, size_t n) {
  p.reading = false;
  if (closed_ || dropping_ || ec == asio::error::operation_aborted) return;
  if (ec && ec != asio::error::eof) return Close(true, "read failed");
  Input input{std::string(p.buf.data(), n), ec == asio::error::eof};
  Mode mode = ModeFor(p);
  if (mode.fault == Fault::kBlackHole) {
    p.parked = std::move(input);
    return;
  }
  Forward(p, std::move(input), mode);
  Write(p);
  Read(p);
}

// Passes one read through the mode: cut to the drop budget, rewritten by frame, queued with
// its release time, followed by an end-of-stream or reset marker where one is due.
void Connection::Forward(Pump& p, Input input, const Mode& mode) {
  std::string_view bytes = input.bytes;
  bool reset_after = false;
  if (mode.fault == Fault::kDropMidFrame) {
    bytes = bytes.substr(0, static_cast<size_t>(std::min<uint64_t>(p.drop_budget, bytes.size())));
    p.drop_budget -= bytes.size();
    reset_after = p.drop_budget == 0;
  }
  uint64_t duplicated = p.rewriter.frames_duplicated();
  uint64_t reordered = p.rewriter.frame_pairs_reordered();
  std::string out;
  p.rewriter.Process(bytes, FrameFaultOf(mode), mode.frame_index, &out);
  if (input.end_of_stream || reset_after) p.rewriter.Release(FrameFault::kNone, &out);
  proxy_->CountFrames(p.rewriter.frames_duplicated() - duplicated,
                      p.rewriter.frame_pairs_reordered() - reordered);

  Clock::time_point release = Clock::now();
  if (mode.fault == Fault::kDelay) release += mode.delay;
  Enqueue(p, ChunkKind::kData, std::move(out), release);
  if (reset_after || input.end_of_stream) {
    Enqueue(p, reset_after ? ChunkKind::kReset : ChunkKind::kEndOfStream, "", release);
    p.read_done = true;
  }
}

void Connection::Enqueue(Pump& p, ChunkKind kind, std::string bytes, Clock::time_point release) {
  if (kind == ChunkKind::kData && bytes.empty()) return;
  p.queued_bytes += bytes.size();
  p.queue.push_back(Chunk{kind, std::move(bytes), release});
}

void Connection::Write(Pump& p) {
  if (closed_ || dropping_ || p.writing || p.waiting || p.queue.empty() ||
      ModeFor(p).fault == Fault::kBlackHole) {
    return;
  }
  auto self = shared_from_this();
  Chunk& chunk = p.queue.front();
  if (chunk.release > Clock::now()) {
    p.waiting = true;
    p.timer.expires_at(chunk.release);
    p.timer.async_wait([self, &p](const error_code& ec) {
      p.waiting = false;
      if (!ec) self->Write(p);
    });
    return;
  }
  switch (chunk.kind) {
    case ChunkKind::kData:
      p.writing = true;
      asio::async_write(*p.dst, asio::buffer(chunk.bytes),
                        [self, &p](const error_code& ec, size_t n) { self->OnWritten(p, ec, n); });
      return;
    case ChunkKind::kEndOfStream: {
      p.queue.pop_front();
      p.write_done = true;
      error_code ignored;
      p.dst->shutdown(tcp::socket::shutdown_send, ignored);
      if (pumps_[0].write_done && pumps_[1].write_done) Close(false, "both ends finished");
      return;
    }
    case ChunkKind::kReset:
      p.queue.pop_front();
      dropping_ = true;
      return ResetWhenSent(p.dst, Clock::now() + kDrainLimit);
  }
}

void Connection::OnWritten(Pump& p, const error_code& ec, size_t n) {
  p.writing = false;
  if (closed_ || ec == asio::error::operation_aborted) return;
  if (ec) return Close(true, "write failed");
  proxy_->CountBytes(p.direction, n);
  p.queued_bytes -= p.queue.front().bytes.size();
  p.queue.pop_front();
  Write(p);
  Read(p);
}

// Resets the connection once `dst` has no unacknowledged bytes left, or at `deadline`.
void Connection::ResetWhenSent(tcp::socket* dst, Clock::time_point deadline) {
  int unsent = 0;
  if (ioctl(dst->native_handle(), TIOCOUTQ, &unsent) != 0 || unsent == 0 ||
      Clock::now() >= deadline) {
    return Close(true, "dropped mid-stream");
  }
  drain_timer_.expires_after(kDrainPoll);
  drain_timer_.async_wait([self = shared_from_this(), dst, deadline](const error_code& ec) {
    if (!ec && !self->closed_) self->ResetWhenSent(dst, deadline);
  });
}

Result<std::string> ProxyCore::Start(const std::string& listen) {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (stopped_ || thread_.joinable()) {
    return FailedPreconditionError("fault proxy to " + target_ + ": already started or stopped");
  }
  MRTRAIN_ASSIGN_OR_RETURN(target_endpoints_, Resolve(io_, target_, /*passive=*/false));
  MRTRAIN_ASSIGN_OR_RETURN(std::vector<tcp::endpoint> listen_endpoints,
                           Resolve(io_, listen, /*passive=*/true));
  const tcp::endpoint& endpoint = listen_endpoints.front();
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  tcp::endpoint bound;
  if (!ec) bound = acceptor_.local_endpoint(ec);
  if (ec) {
    error_code ignored;
    acceptor_.close(ignored);
    return UnavailableError("listen on " + listen + ": " + ec.message());
  }
  Accept();
  std::promise<void> finished;
  finished_ = finished.get_future();
  thread_ = std::thread([this, finished = std::move(finished)]() mutable {
    io_.run();
    finished.set_value();
  });
  thread_id_ = thread_.get_id();
  running_ = true;
  std::string address = EndpointString(bound);
  Log()->info("fault proxy listening on {}, forwarding to {}", address, target_);
  return address;
}

// Stop() from any thread but the I/O thread (which runs no user code):
//
//   running_ = false         CutAll() and SetMode() stop posting work
//   ShutdownOnThread()       on the I/O thread: close the listener and every connection,
//                            drop the work guard; run() returns once handlers drain
//   wait, bounded            if run() has not returned after kSyncTimeout, io_.stop() ends it
//   join
void ProxyCore::Stop() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (stopped_) return;
  stopped_ = true;
  running_ = false;
  if (!thread_.joinable()) return;
  asio::post(io_, [this] { ShutdownOnThread(); });
  if (finished_.wait_for(kSyncTimeout) != std::future_status::ready) {
    Log()->warn("fault proxy to {}: I/O thread still busy after {} s; stopping it", target_,
                kSyncTimeout.count());
    io_.stop();
  }
  thread_.join();
}

void ProxyCore::SetMode(const Mode& mode, Direction direction) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int d : {kClientToServer, kServerToClient}) {
      if (direction == Direction::kBoth || static_cast<int>(direction) == d) {
        modes_[d] = mode;
        ++generations_[d];
      }
    }
  }
  if (running_) asio::post(io_, [this] { KickAll(); });
}

void ProxyCore::CutAll() {
  if (!running_) return;
  if (InIoThread()) return CutAllOnThread();
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> cut = done->get_future();
  asio::post(io_, [this, done] {
    CutAllOnThread();
    done->set_value();
  });
  if (cut.wait_for(kSyncTimeout) != std::future_status::ready) {
    Log()->warn("fault proxy to {}: CutAll did not finish within {} s", target_,
                kSyncTimeout.count());
  }
}

FaultProxy::Counters ProxyCore::counters() const {
  Counters c;
  c.connections_accepted = connections_accepted_;
  c.bytes_client_to_server = bytes_[kClientToServer];
  c.bytes_server_to_client = bytes_[kServerToClient];
  c.frames_duplicated = frames_duplicated_;
  c.frame_pairs_reordered = frame_pairs_reordered_;
  return c;
}

std::pair<Mode, uint64_t> ProxyCore::CurrentMode(int direction) const {
  std::lock_guard<std::mutex> lock(mu_);
  return {modes_[direction], generations_[direction]};
}

void ProxyCore::Accept() {
  acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      Log()->warn("fault proxy to {}: accept failed: {}", target_, ec.message());
      accept_retry_.expires_after(kAcceptRetryDelay);
      accept_retry_.async_wait([this](const error_code& e) {
        if (!e && acceptor_.is_open()) Accept();
      });
      return;
    }
    ++connections_accepted_;
    auto connection = std::make_shared<Connection>(this, std::move(socket), next_connection_id_++);
    connections_.insert(connection);
    connection->Start();
    Accept();
  });
}

// Each helper below iterates over a copy: closing a connection removes it from the set.
void ProxyCore::KickAll() {
  auto connections = connections_;
  for (const auto& connection : connections) connection->Kick();
}

void ProxyCore::CutAllOnThread() {
  auto connections = connections_;
  for (const auto& connection : connections) connection->Close(true, "cut");
  if (!connections.empty())
    Log()->info("fault proxy to {}: cut {} connections", target_, connections.size());
}

void ProxyCore::ShutdownOnThread() {
  error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  auto connections = connections_;
  for (const auto& connection : connections) connection->Close(false, "proxy stopped");
  connections_.clear();
  work_.reset();
}

}  // namespace

class FaultProxy::Impl final : public ProxyCore {
 public:
  using ProxyCore::ProxyCore;
};

Mode Mode::Delay(std::chrono::milliseconds delay) {
  Mode mode;
  mode.fault = Fault::kDelay;
  mode.delay = std::max(delay, std::chrono::milliseconds(0));
  return mode;
}

Mode Mode::BlackHole() {
  Mode mode;
  mode.fault = Fault::kBlackHole;
  return mode;
}

Mode Mode::DropMidFrame(uint64_t after_bytes) {
  Mode mode;
  mode.fault = Fault::kDropMidFrame;
  mode.after_bytes = after_bytes;
  return mode;
}

Mode Mode::Duplicate(std::optional<uint64_t> frame_index) {
  Mode mode;
  mode.fault = Fault::kDuplicate;
  mode.frame_index = frame_index;
  return mode;
}

Mode Mode::Reorder(std::optional<uint64_t> frame_index) {
  Mode mode;
  mode.fault = Fault::kReorder;
  mode.frame_index = frame_index;
  return mode;
}

FaultProxy::FaultProxy(std::string target_host_port)
    : impl_(std::make_unique<Impl>(std::move(target_host_port))) {}

FaultProxy::~FaultProxy() { Stop(); }

Result<std::string> FaultProxy::Start(const std::string& listen) { return impl_->Start(listen); }
void FaultProxy::Stop() { impl_->Stop(); }
void FaultProxy::SetMode(const Mode& mode, Direction direction) { impl_->SetMode(mode, direction); }
void FaultProxy::CutAll() { impl_->CutAll(); }
FaultProxy::Counters FaultProxy::counters() const { return impl_->counters(); }

}  // namespace mrtrain::tools
