#include "test/runtime/transport/transport_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>

#include "runtime/protocol/frame.h"

namespace mrtrain::testing {

using runtime::Connection;
using runtime::ConnectionHandler;
using runtime::MessageType;

struct Inbox::State {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<Received> messages;
  std::vector<std::shared_ptr<Connection>> opened;
  std::vector<Status> closed;
  std::atomic<runtime::Transport*> transport{nullptr};
  std::atomic<int> off_thread{0};
};

Inbox::Inbox() : state_(std::make_shared<State>()) {}

ConnectionHandler Inbox::Handler(
    std::function<void(const std::shared_ptr<Connection>&, MessageType, const std::string&)>
        on_message) {
  ConnectionHandler handler;
  // Weak: the state holds connections, which hold these handlers.
  std::weak_ptr<State> weak = state_;
  handler.on_open = [weak](const std::shared_ptr<Connection>& c) {
    auto state = weak.lock();
    if (!state) return;
    std::lock_guard<std::mutex> lock(state->mu);
    state->opened.push_back(c);
    state->changed.notify_all();
  };
  handler.on_message = [weak, on_message](const std::shared_ptr<Connection>& c, MessageType type,
                                          std::string payload) {
    auto state = weak.lock();
    if (!state) return;
    runtime::Transport* t = state->transport;
    if (t != nullptr && !t->InTransportThread()) ++state->off_thread;
    if (on_message) on_message(c, type, payload);
    std::lock_guard<std::mutex> lock(state->mu);
    state->messages.push_back({c, type, std::move(payload)});
    state->changed.notify_all();
  };
  handler.on_closed = [weak](const std::shared_ptr<Connection>&, const Status& s) {
    auto state = weak.lock();
    if (!state) return;
    std::lock_guard<std::mutex> lock(state->mu);
    state->closed.push_back(s);
    state->changed.notify_all();
  };
  return handler;
}

bool Inbox::WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(state_->mu);
  return state_->changed.wait_for(lock, timeout, done);
}

bool Inbox::WaitForMessages(size_t n) {
  return WaitUntil([&] { return state_->messages.size() >= n; });
}

bool Inbox::WaitForOpened(size_t n) {
  return WaitUntil([&] { return state_->opened.size() >= n; });
}

bool Inbox::WaitForClosed(size_t n) {
  return WaitUntil([&] { return state_->closed.size() >= n; });
}

std::vector<Received> Inbox::messages() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->messages;
}

std::vector<std::shared_ptr<Connection>> Inbox::opened() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->opened;
}

std::vector<Status> Inbox::closed() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->closed;
}

int Inbox::off_thread_callbacks() const { return state_->off_thread; }

void Inbox::set_transport(runtime::Transport* t) { state_->transport = t; }

Result<std::shared_ptr<Connection>> ConnectAndWait(runtime::Transport& transport,
                                                   const std::string& address,
                                                   ConnectionHandler handler) {
  auto promise = std::make_shared<std::promise<Result<std::shared_ptr<Connection>>>>();
  auto future = promise->get_future();
  transport.Connect(address, std::move(handler), [promise](Result<std::shared_ptr<Connection>> r) {
    promise->set_value(std::move(r));
  });
  if (future.wait_for(kWait) != std::future_status::ready) {
    return Status(StatusCode::kDeadlineExceeded, "test: connect did not finish");
  }
  return future.get();
}

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

namespace {

void SetReceiveTimeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

Result<std::pair<uint16_t, std::string>> ReadOneFrame(int fd, runtime::FrameDecoder* decoder) {
  SetReceiveTimeout(fd, kWait);
  for (;;) {
    auto next = decoder->Next();
    if (!next.ok()) return next.status();
    if (next->has_value()) return std::make_pair((*next)->type, std::move((*next)->payload));
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return Status(StatusCode::kUnavailable, "test: peer closed during read");
    decoder->Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

bool WriteAll(int fd, const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

Status RunHandshake(int fd, runtime::FrameDecoder* decoder, runtime::Handshake& handshake) {
  auto first = handshake.Start();
  if (!first.ok()) return first.status();
  for (auto& f : *first)
    WriteAll(fd, runtime::EncodeFrame(static_cast<uint16_t>(f.type), f.payload));
  while (!handshake.done()) {
    auto frame = ReadOneFrame(fd, decoder);
    if (!frame.ok()) return frame.status();
    auto replies = handshake.OnFrame(frame->first, frame->second);
    if (!replies.ok()) return replies.status();
    for (auto& f : *replies) {
      WriteAll(fd, runtime::EncodeFrame(static_cast<uint16_t>(f.type), f.payload));
    }
  }
  return Status::Ok();
}

}  // namespace

RawSocket::~RawSocket() {
  if (fd_ >= 0) ::close(fd_);
}

Status RawSocket::Connect(const std::string& address) {
  size_t colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return IOError(std::string("test: connect: ") + std::strerror(errno));
  }
  return Status::Ok();
}

bool RawSocket::Write(const std::string& bytes) { return WriteAll(fd_, bytes); }

bool RawSocket::ClosedByPeerWithin(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    SetReceiveTimeout(fd_, left);
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;  // EAGAIN: the timeout ran out
  }
}

Status RawSocket::Handshake(const runtime::HandshakeConfig& config) {
  runtime::Handshake handshake(runtime::HandshakeRole::kClient, config);
  Status s = RunHandshake(fd_, &decoder_, handshake);
  decoder_.set_max_payload_bytes(runtime::kDefaultMaxFramePayloadBytes);
  return s;
}

Result<std::pair<uint16_t, std::string>> RawSocket::ReadFrame() {
  return ReadOneFrame(fd_, &decoder_);
}

StalledServer::StalledServer(runtime::HandshakeConfig config) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  // A small receive buffer (inherited by the accepted socket) so the sender's budget, not the
  // kernel, holds most of the backlog.
  int small = 4096;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listen_fd_, 4);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  address_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  thread_ = std::thread([this, config] {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    runtime::Handshake handshake(runtime::HandshakeRole::kServer, config);
    runtime::FrameDecoder decoder(runtime::kMaxHandshakeFramePayloadBytes);
    Status s = fd >= 0 ? RunHandshake(fd, &decoder, handshake) : IOError("accept failed");
    std::lock_guard<std::mutex> lock(mu_);
    conn_fd_ = fd;
    status_ = s;
    handshake_done_ = true;
    cv_.notify_all();
  });
}

StalledServer::~StalledServer() {
  ::shutdown(listen_fd_, SHUT_RDWR);  // unblocks accept() if nobody connected
  thread_.join();
  if (conn_fd_ >= 0) ::close(conn_fd_);
  ::close(listen_fd_);
}

bool StalledServer::WaitForHandshake() {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, kWait, [&] { return handshake_done_; }) && status_.ok();
}

}  // namespace mrtrain::testing
