#include "runtime/http/http_server.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "engine/base/log.h"
#include "runtime/transport/error_code_status.h"

namespace mrtrain::runtime {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// One connection: read until the request head is complete (or refused), answer, close. Owned
// by the handlers in flight (shared_from_this); the deadline timer closes the socket, which
// ends them.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const StatusSource* source, const HttpServerOptions& options,
          std::atomic<int>* open)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        source_(source),
        options_(options),
        open_(open) {}
  ~Session() { --*open_; }

  void Begin() {
    auto self = shared_from_this();
    timer_.expires_after(options_.deadline);
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->Close();  // past the deadline
    });
    Read();
  }

 private:
  void Read() {
    // Never more than the head limit is buffered: the parser refuses a head that fills it.
    const size_t room = options_.limits.max_head_bytes - received_.size();
    chunk_.resize(std::min<size_t>(room, 4096));
    auto self = shared_from_this();
    socket_.async_read_some(
        asio::buffer(chunk_), [self](const boost::system::error_code& ec, size_t n) {
          if (ec) return self->Close();  // the client went away, or the deadline closed it
          self->received_.append(self->chunk_.data(), n);
          ParsedHttpRequest parsed = ParseHttpRequest(self->received_, self->options_.limits);
          switch (parsed.state) {
            case ParsedHttpRequest::State::kIncomplete:
              return self->Read();
            case ParsedHttpRequest::State::kRefused:
              return self->Write(SerializeHttpResponse(parsed.refusal));
            case ParsedHttpRequest::State::kComplete:
              return self->Write(
                  SerializeHttpResponse(HandleHttpRequest(parsed.request, *self->source_)));
          }
        });
  }

  void Write(std::string bytes) {
    response_ = std::move(bytes);
    received_.clear();
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(response_),
                      [self](const boost::system::error_code& ec, size_t) {
                        if (ec) return self->Close();
                        self->Linger();
                      });
  }

  // Closing a socket with unread input makes the kernel send a reset, and a reset can
  // discard the response before the client reads it (a 431 to a client still sending its
  // head). So: end our side, then read and drop what the client still sends until it closes,
  // the deadline passes or a bounded amount has been dropped.
  void Linger() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    chunk_.resize(4096);
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(chunk_),
                            [self](const boost::system::error_code& ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrainBytes) return self->Close();
                              self->Linger();
                            });
  }

  static constexpr size_t kMaxDrainBytes = 1 << 20;

  void Close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  const StatusSource* const source_;
  const HttpServerOptions& options_;
  std::atomic<int>* const open_;
  std::string received_;
  std::string chunk_;
  std::string response_;
  size_t drained_ = 0;
};

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseHttpListen(const std::string& listen) {
  auto bad = [&listen](const std::string& why) {
    return InvalidArgumentError("--http-listen " + listen + ": " + why +
                                " (expected PORT, HOST:PORT or [IPV6]:PORT)");
  };
  std::string host = "127.0.0.1";
  std::string port = listen;
  if (const size_t colon = listen.rfind(':'); colon != std::string::npos) {
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host == "localhost") host = "127.0.0.1";
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (ec) return bad("'" + host + "' is not an IP address");
  return std::make_pair(host, static_cast<uint16_t>(std::stoul(port)));
}

class HttpServer::Impl {
 public:
  Impl(const StatusSource* source, HttpServerOptions options)
      : source_(source), options_(std::move(options)), acceptor_(io_) {}

  Result<std::string> Start() {
    MRTRAIN_ASSIGN_OR_RETURN(auto host_port, ParseHttpListen(options_.listen));
    const tcp::endpoint endpoint(asio::ip::make_address(host_port.first), host_port.second);
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ErrorCodeToStatus(ec, "status page: listen on " + options_.listen);
    const tcp::endpoint bound = acceptor_.local_endpoint(ec);
    if (ec) return ErrorCodeToStatus(ec, "status page: local address");
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    const std::string address = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                        : bound.address().to_string();
    return address + ":" + std::to_string(bound.port());
  }

  void Stop() {
    if (!thread_.joinable()) return;
    // Open sessions are dropped with the context (their handlers own them).
    io_.stop();
    thread_.join();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      if (ec) {
        // Out of file descriptors, say: accepting again at once would spin. Try again shortly.
        Logger("master")->warn("status page: accept failed: {}", ec.message());
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([this](const boost::system::error_code& wait) {
          if (!wait) Accept();
        });
        return;
      }
      if (open_.load() >= options_.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
        Logger("master")->debug("status page: {} connections open; one refused",
                                options_.max_connections);
      } else {
        ++open_;
        std::make_shared<Session>(std::move(socket), source_, options_, &open_)->Begin();
      }
      Accept();
    });
  }

  const StatusSource* const source_;
  const HttpServerOptions options_;
  std::atomic<int> open_{0};  // sessions alive; they outlive io_ by nothing, so it comes first
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_{io_};  // a failed accept's pause
  std::thread thread_;
};

HttpServer::HttpServer(const StatusSource* source, HttpServerOptions options)
    : impl_(std::make_shared<Impl>(source, std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::string> HttpServer::Start() { return impl_->Start(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace mrtrain::runtime
