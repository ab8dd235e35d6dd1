// The fault proxy between a real client socket and a Boost.Asio echo server, all on 127.0.0.1:
// every test asserts the bytes (and the silence, or the reset) each end sees.
#include "tools/faultproxy/fault_proxy.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include "runtime/protocol/protocol_constants.h"

namespace mrtrain::tools {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kWait{3000};  // for what must happen; every test ends well within it

uint16_t PortOf(const std::string& address) {
  return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

// Accepts on 127.0.0.1:0 and echoes every byte back, recording per connection what arrived and
// whether the connection has ended.
class EchoServer {
 public:
  EchoServer() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~EchoServer() {
    io_.stop();
    thread_.join();
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

  // What connection `index` received once it has at least `bytes` bytes, or by the deadline.
  std::string WaitForBytes(size_t index, size_t bytes) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kWait,
                 [&] { return Has(index) && records_[index].received.size() >= bytes; });
    return Has(index) ? records_[index].received : "";
  }

  // Whether connection `index` has ended (EOF or error) by the deadline.
  bool WaitForEnd(size_t index, milliseconds timeout = kWait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return Has(index) && records_[index].ended; });
  }

  std::string Received(size_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    return Has(index) ? records_[index].received : "";
  }

 private:
  struct Record {
    std::string received;
    bool ended = false;
  };
  struct Session {
    explicit Session(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    char buf[4096];
    size_t index = 0;
  };

  bool Has(size_t index) const { return index < records_.size(); }

  void Accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (ec) return;
      auto session = std::make_shared<Session>(std::move(socket));
      {
        std::lock_guard<std::mutex> lock(mu_);
        session->index = records_.size();
        records_.emplace_back();
      }
      Read(session);
      Accept();
    });
  }

  void Read(const std::shared_ptr<Session>& session) {
    session->socket.async_read_some(
        asio::buffer(session->buf), [this, session](const error_code& ec, size_t n) {
          if (ec) return End(session);
          {
            std::lock_guard<std::mutex> lock(mu_);
            records_[session->index].received.append(session->buf, n);
          }
          cv_.notify_all();
          asio::async_write(session->socket, asio::buffer(session->buf, n),
                            [this, session](const error_code& e, size_t) {
                              if (e) return End(session);
                              Read(session);
                            });
        });
  }

  void End(const std::shared_ptr<Session>& session) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      records_[session->index].ended = true;
    }
    cv_.notify_all();
    error_code ignored;
    session->socket.close(ignored);
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Record> records_;  // guarded by mu_
};

// A blocking client socket with bounded reads, in plain POSIX so every wait has a timeout.
class Client {
 public:
  enum class End { kComplete, kTimeout, kClosed, kReset };
  struct Read {
    std::string bytes;
    End end;
  };

  explicit Client(const std::string& address) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(PortOf(address));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Client() { close(fd_); }

  void Send(const std::string& bytes) {
    for (size_t sent = 0; sent < bytes.size();) {
      ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      sent += static_cast<size_t>(n);
    }
  }

  // Reads until `want` bytes arrived, the connection ended, or `timeout` passed.
  Read ReadFor(size_t want, milliseconds timeout = kWait) {
    Read read{"", End::kTimeout};
    Clock::time_point deadline = Clock::now() + timeout;
    while (read.bytes.size() < want) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return read;
      char buf[65536];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != ECONNRESET && errno != EINTR)) {
        read.end = End::kClosed;
        return read;
      }
      if (n < 0 && errno == ECONNRESET) {
        read.end = End::kReset;
        return read;
      }
      if (n > 0) read.bytes.append(buf, static_cast<size_t>(n));
    }
    read.end = End::kComplete;
    return read;
  }

  // Reads and discards until the connection ends; how it ended, or kTimeout.
  End ReadToEnd(milliseconds timeout = kWait) { return ReadFor(SIZE_MAX, timeout).end; }

 private:
  int fd_;
};

// The echo server behind a started proxy.
struct ProxiedEcho {
  EchoServer server;
  FaultProxy proxy{server.address()};
  std::string address;

  ProxiedEcho() {
    Result<std::string> started = proxy.Start();
    REQUIRE(started.ok());
    address = *started;
  }
};

// Waits for `done` to hold, up to kWait (counters are updated just after each write completes).
bool Eventually(const std::function<bool()>& done) {
  Clock::time_point deadline = Clock::now() + kWait;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A frame per runtime/protocol/FORMAT.md; the CRC is left 0, which the proxy does not check.
std::string Frame(uint16_t type, const std::string& payload) {
  std::string frame;
  PutLe(&frame, runtime::kFrameMagic, 4);
  PutLe(&frame, runtime::kProtocolVersion, 2);
  PutLe(&frame, type, 2);
  PutLe(&frame, payload.size(), 4);
  PutLe(&frame, 0, 4);
  REQUIRE(frame.size() == runtime::kFrameHeaderBytes);
  return frame + payload;
}

// Sends `bytes` in uneven pieces (1, 7, 30, 200, then the rest), so frames straddle reads.
void SendInPieces(Client* client, const std::string& bytes) {
  size_t pos = 0;
  for (size_t piece : {1, 7, 30, 200}) {
    if (pos >= bytes.size()) break;
    client->Send(bytes.substr(pos, piece));
    pos += piece;
    std::this_thread::sleep_for(milliseconds(2));
  }
  if (pos < bytes.size()) client->Send(bytes.substr(pos));
}

TEST_CASE("proxy in pass mode forwards bytes unchanged both ways", "[tools]") {
  ProxiedEcho echo;
  Client client(echo.address);
  std::string sent = "hello through the proxy";
  for (int i = 0; i < 300000; ++i) sent.push_back(static_cast<char>((i * 131) >> 3));
  client.Send(sent);

  Client::Read read = client.ReadFor(sent.size());
  REQUIRE(read.end == Client::End::kComplete);
  CHECK(read.bytes == sent);
  CHECK(echo.server.Received(0) == sent);
  CHECK(Eventually([&] {
    FaultProxy::Counters c = echo.proxy.counters();
    return c.bytes_client_to_server == sent.size() && c.bytes_server_to_client == sent.size();
  }));
  CHECK(echo.proxy.counters().connections_accepted == 1);
}

TEST_CASE("proxy in delay mode holds each chunk at least the delay", "[tools]") {
  ProxiedEcho echo;
  Client client(echo.address);
  client.Send("warm");
  REQUIRE(client.ReadFor(4).bytes == "warm");

  milliseconds at_least{0};
  SECTION("both directions") {
    echo.proxy.SetMode(Mode::Delay(milliseconds(150)));
    at_least = milliseconds(300);
  }
  SECTION("client to server only") {
    echo.proxy.SetMode(Mode::Delay(milliseconds(150)), Direction::kClientToServer);
    at_least = milliseconds(150);
  }
  Clock::time_point start = Clock::now();
  client.Send("ping");
  Client::Read read = client.ReadFor(4);
  auto elapsed = Clock::now() - start;
  REQUIRE(read.end == Client::End::kComplete);
  CHECK(read.bytes == "ping");
  CHECK(elapsed >= at_least);
  CHECK(elapsed < at_least + milliseconds(1000));
}

TEST_CASE("proxy in black-hole mode is silent without closing, then delivers what it held",
          "[tools]") {
  ProxiedEcho echo;
  Client client(echo.address);
  client.Send("a");
  REQUIRE(client.ReadFor(1).bytes == "a");

  echo.proxy.SetMode(Mode::BlackHole());
  client.Send("b");
  Client::Read silent = client.ReadFor(1, milliseconds(300));
  CHECK(silent.end == Client::End::kTimeout);  // neither a reply, nor a close or reset
  CHECK(silent.bytes.empty());
  CHECK(echo.server.Received(0) == "a");
  CHECK_FALSE(echo.server.WaitForEnd(0, milliseconds(0)));

  echo.proxy.SetMode(Mode::Pass());
  Client::Read healed = client.ReadFor(1);
  CHECK(healed.end == Client::End::kComplete);
  CHECK(healed.bytes == "b");
  CHECK(echo.server.Received(0) == "ab");
}

TEST_CASE("proxy in drop mode resets both sides after exactly the allowed bytes", "[tools]") {
  ProxiedEcho echo;
  Client client(echo.address);
  client.Send("x");
  REQUIRE(client.ReadFor(1).bytes == "x");

  echo.proxy.SetMode(Mode::DropMidFrame(30), Direction::kClientToServer);
  std::string frame = Frame(64, std::string(84, 'p'));  // 100 bytes; the cut lands in the payload
  client.Send(frame);

  CHECK(client.ReadToEnd() == Client::End::kReset);
  REQUIRE(echo.server.WaitForEnd(0));
  CHECK(echo.server.Received(0) == "x" + frame.substr(0, 30));
}

TEST_CASE("proxy in duplicate mode sends whole frames twice", "[tools]") {
  ProxiedEcho echo;
  std::string a = Frame(1, std::string(35, 'h')), b = Frame(3, ""),
              c = Frame(64, std::string(900, 'r'));
  std::string expected;
  uint64_t duplicated = 0;
  SECTION("every frame") {
    echo.proxy.SetMode(Mode::Duplicate(), Direction::kClientToServer);
    expected = a + a + b + b + c + c;
    duplicated = 3;
  }
  SECTION("only frame 1") {
    echo.proxy.SetMode(Mode::Duplicate(1), Direction::kClientToServer);
    expected = a + b + b + c;
    duplicated = 1;
  }
  Client client(echo.address);
  SendInPieces(&client, a + b + c);
  CHECK(echo.server.WaitForBytes(0, expected.size()) == expected);
  CHECK(echo.proxy.counters().frames_duplicated == duplicated);
  Client::Read echoed = client.ReadFor(expected.size());  // server to client passes unchanged
  CHECK(echoed.bytes == expected);
}

TEST_CASE("proxy in reorder mode swaps consecutive whole frames", "[tools]") {
  ProxiedEcho echo;
  std::string a = Frame(16, "first"), b = Frame(17, std::string(300, 'b')), c = Frame(18, ""),
              d = Frame(19, "fourth");
  std::string expected;
  uint64_t pairs = 0;
  SECTION("every pair") {
    echo.proxy.SetMode(Mode::Reorder(), Direction::kClientToServer);
    expected = b + a + d + c;
    pairs = 2;
  }
  SECTION("only the pair starting at frame 1") {
    echo.proxy.SetMode(Mode::Reorder(1), Direction::kClientToServer);
    expected = a + c + b + d;
    pairs = 1;
  }
  Client client(echo.address);
  SendInPieces(&client, a + b + c + d);
  CHECK(echo.server.WaitForBytes(0, expected.size()) == expected);
  CHECK(echo.proxy.counters().frame_pairs_reordered == pairs);
}

TEST_CASE("proxy passes a stream that is not frames through unchanged", "[tools]") {
  ProxiedEcho echo;
  echo.proxy.SetMode(Mode::Duplicate(), Direction::kClientToServer);
  std::string a = Frame(16, "framed"), b = Frame(17, "after the garbage");
  std::string garbage = "GET / HTTP/1.0\r\n";
  Client client(echo.address);
  client.Send(a);
  REQUIRE(echo.server.WaitForBytes(0, 2 * a.size()) == a + a);
  client.Send(garbage + b);

  std::string expected = a + a + garbage + b;  // once out of step, frames are not parsed again
  CHECK(echo.server.WaitForBytes(0, expected.size()) == expected);
  std::this_thread::sleep_for(milliseconds(50));
  CHECK(echo.server.Received(0) == expected);
}

TEST_CASE("CutAll resets every open connection and the proxy keeps accepting", "[tools]") {
  ProxiedEcho echo;
  Client first(echo.address), second(echo.address);
  first.Send("1");
  second.Send("2");
  REQUIRE(first.ReadFor(1).bytes == "1");
  REQUIRE(second.ReadFor(1).bytes == "2");

  echo.proxy.CutAll();
  CHECK(first.ReadToEnd() == Client::End::kReset);
  CHECK(second.ReadToEnd() == Client::End::kReset);
  CHECK(echo.server.WaitForEnd(0));
  CHECK(echo.server.WaitForEnd(1));

  Client third(echo.address);
  third.Send("3");
  CHECK(third.ReadFor(1).bytes == "3");
  CHECK(echo.proxy.counters().connections_accepted == 3);
}

TEST_CASE("proxy resets a client whose target refuses the connection", "[tools]") {
  std::string dead;
  {
    EchoServer gone;  // its port is closed again when it goes
    dead = gone.address();
  }
  FaultProxy proxy(dead);
  Result<std::string> address = proxy.Start();
  REQUIRE(address.ok());
  Client client(*address);
  CHECK(client.ReadToEnd() == Client::End::kReset);
}

TEST_CASE("Stop closes connections promptly, is idempotent and ends the proxy", "[tools]") {
  ProxiedEcho echo;
  Client client(echo.address);
  client.Send("s");
  REQUIRE(client.ReadFor(1).bytes == "s");
  echo.proxy.SetMode(Mode::BlackHole());  // a parked connection must not hold Stop up

  Clock::time_point start = Clock::now();
  echo.proxy.Stop();
  echo.proxy.Stop();
  CHECK(Clock::now() - start < milliseconds(1000));
  CHECK(client.ReadToEnd() == Client::End::kClosed);
  echo.proxy.CutAll();  // does nothing once stopped
  Result<std::string> again = echo.proxy.Start();
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("Start rejects malformed addresses", "[tools]") {
  FaultProxy bad_target("no-port-here");
  Result<std::string> started = bad_target.Start();
  REQUIRE_FALSE(started.ok());
  CHECK(started.status().code() == StatusCode::kInvalidArgument);

  FaultProxy bad_listen("127.0.0.1:1");
  started = bad_listen.Start("127.0.0.1:99999");
  REQUIRE_FALSE(started.ok());
  CHECK(started.status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mrtrain::tools
