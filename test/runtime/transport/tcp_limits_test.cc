// What strangers and stalled peers can make a TCP transport hold: the memory of connections that
// have not authenticated, their number, how long a half-received frame may wait, and how many
// log lines a flood of refused connections costs.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "engine/base/log.h"
#include "runtime/protocol/frame.h"
#include "runtime/transport/tcp_transport.h"
#include "test/runtime/transport/transport_test_util.h"

namespace mrtrain::runtime {
namespace {

using testing::ConnectAndWait;
using testing::Inbox;
using testing::RawSocket;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr char kSecret[] = "tcp limits secret";

std::unique_ptr<Transport> Make(const TcpOptions& options) {
  auto t = MakeTcpTransport(options);
  REQUIRE(t.ok());
  return std::move(*t);
}

TcpOptions Options() {
  TcpOptions options;
  options.handshake.secret = kSecret;
  return options;
}

// Waits until the transport counts `n` pending connections.
bool WaitForPending(Transport& t, size_t n) {
  for (auto start = Clock::now(); Clock::now() - start < testing::kWait;) {
    if (GetTcpStats(t).pending_connections == n) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

TEST_CASE("connections that never authenticate cost under 8 KiB each and are capped",
          "[runtime][transport]") {
  TcpOptions options = Options();
  options.max_pending_connections = 40;
  auto server = Make(options);
  Inbox server_inbox;
  auto address = server->Listen("127.0.0.1:0", server_inbox.Handler());
  REQUIRE(address.ok());

  std::vector<std::unique_ptr<RawSocket>> idle;
  for (int i = 0; i < 40; ++i) {
    idle.push_back(std::make_unique<RawSocket>());
    REQUIRE(idle.back()->Connect(*address).ok());
  }
  REQUIRE(WaitForPending(*server, 40));
  const TcpStats stats = GetTcpStats(*server);
  const size_t per_connection = stats.pending_bytes / 40;
  std::printf("bytes reserved per connection before its handshake: %zu\n", per_connection);
  CHECK(per_connection < 8 * 1024);
  CHECK(per_connection > 0);

  // Over the cap: closed at once, counted.
  for (int i = 0; i < 3; ++i) {
    RawSocket extra;
    REQUIRE(extra.Connect(*address).ok());
    CHECK(extra.ClosedByPeerWithin(5s));
  }
  CHECK(GetTcpStats(*server).refused_connections == 3);

  // A slot freed is a slot a member of the cluster can use; once it has authenticated it no
  // longer counts.
  idle.pop_back();
  REQUIRE(WaitForPending(*server, 39));
  auto client = Make(Options());
  Inbox client_inbox;
  auto good = ConnectAndWait(*client, *address, client_inbox.Handler());
  REQUIRE(good.ok());
  REQUIRE(server_inbox.WaitForOpened(1));
  CHECK(GetTcpStats(*server).pending_connections == 39);
}

TEST_CASE("the handshake timeout closes silent connections and frees their slots",
          "[runtime][transport]") {
  TcpOptions options = Options();
  options.max_pending_connections = 2;
  options.handshake_timeout = 200ms;
  auto server = Make(options);
  auto address = server->Listen("127.0.0.1:0", Inbox().Handler());
  REQUIRE(address.ok());
  RawSocket a, b;
  REQUIRE(a.Connect(*address).ok());
  REQUIRE(b.Connect(*address).ok());
  CHECK(a.ClosedByPeerWithin(5s));
  CHECK(b.ClosedByPeerWithin(5s));
  CHECK(WaitForPending(*server, 0));
  CHECK(GetTcpStats(*server).refused_connections == 0);
}

TEST_CASE("an authenticated peer that starts a frame and goes quiet is closed",
          "[runtime][transport]") {
  TcpOptions options = Options();
  options.frame_timeout = 300ms;
  auto server = Make(options);
  Inbox inbox;
  auto echo = [](const std::shared_ptr<Connection>& c, MessageType type, const std::string& p) {
    (void)c->Send(type, p);
  };
  auto address = server->Listen("127.0.0.1:0", inbox.Handler(echo));
  REQUIRE(address.ok());
  RawSocket raw;
  REQUIRE(raw.Connect(*address).ok());
  REQUIRE(raw.Handshake(HandshakeConfig{kSecret, false}).ok());

  SECTION("a 255 MiB header, ten bytes, then silence") {
    std::string header = EncodeFrameHeader(static_cast<uint16_t>(MessageType::kPushRun), "");
    const uint32_t length = 255u << 20;
    for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
    const auto start = Clock::now();
    REQUIRE(raw.Write(header + std::string(10, 'x')));
    CHECK(raw.ClosedByPeerWithin(5s));
    CHECK(Clock::now() - start >= 250ms);
    REQUIRE(inbox.WaitForClosed(1));
    CHECK(inbox.closed()[0].code() == StatusCode::kDeadlineExceeded);
    CHECK_THAT(inbox.closed()[0].message(),
               Catch::Contains("no byte of the frame in progress for 300 ms") &&
                   Catch::Contains("26 bytes of it received"));
  }
  SECTION("a slow frame that keeps coming, and a quiet connection between frames, stay open") {
    const std::string frame =
        EncodeFrame(static_cast<uint16_t>(MessageType::kHeartbeat), std::string(100, 'y'));
    for (size_t at = 0; at < frame.size(); at += 30) {  // 4 pieces, 200 ms apart: 600 ms
      REQUIRE(raw.Write(frame.substr(at, 30)));
      std::this_thread::sleep_for(200ms);
    }
    REQUIRE(inbox.WaitForMessages(1));
    std::this_thread::sleep_for(600ms);  // idle at a frame boundary
    REQUIRE(raw.Write(EncodeFrame(static_cast<uint16_t>(MessageType::kHeartbeat), "again")));
    REQUIRE(inbox.WaitForMessages(2));
    CHECK(inbox.closed().empty());
  }
}

TEST_CASE("a flood of refused connections logs a few lines and a count", "[runtime][transport]") {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  auto logger = Logger("transport");
  logger->sinks().push_back(sink);  // before the transport's thread exists
  {
    TcpOptions options = Options();
    options.max_pending_connections = 0;  // refuse everyone
    auto server = Make(options);
    auto address = server->Listen("127.0.0.1:0", Inbox().Handler());
    REQUIRE(address.ok());
    for (int i = 0; i < 60; ++i) {
      RawSocket raw;
      REQUIRE(raw.Connect(*address).ok());
      CHECK(raw.ClosedByPeerWithin(5s));
    }
    CHECK(GetTcpStats(*server).refused_connections == 60);
    std::this_thread::sleep_for(1200ms);  // the summary comes at the end of the interval
    server->Stop();
  }
  logger->sinks().pop_back();
  // Normally 5 lines and one counting 55; a slow machine may spread the flood over two
  // intervals. Either way every refusal is logged or counted, in a handful of lines.
  std::vector<std::string> lines = sink->last_formatted();
  size_t refusals = 0, summaries = 0, held = 0;
  const std::string kSummary = " more warnings about connections in the last 1 s";
  for (const std::string& line : lines) {
    const size_t at = line.find(kSummary);
    if (at != std::string::npos) {
      ++summaries;
      const size_t start = line.find_last_of(' ', at - 1) + 1;
      held += std::stoul(line.substr(start, at - start));
    } else if (line.find("refusing a connection from 127.0.0.1") != std::string::npos) {
      ++refusals;
    }
  }
  INFO(lines.size() << " lines");
  CHECK(refusals + held == 60);
  CHECK(summaries >= 1);
  CHECK(refusals <= 5 * summaries + 5);
  CHECK(lines.size() <= 12);
}

}  // namespace
}  // namespace mrtrain::runtime
