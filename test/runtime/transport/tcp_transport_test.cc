// TCP-specific behaviour: hostile and misconfigured peers, addresses, handshakes.
#include "runtime/transport/tcp_transport.h"

#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "runtime/protocol/frame.h"
#include "test/runtime/transport/transport_test_util.h"

namespace mrtrain::runtime {
namespace {

using testing::ConnectAndWait;
using testing::Inbox;
using testing::RawSocket;
using Clock = std::chrono::steady_clock;

constexpr char kSecret[] = "tcp test secret";

TcpOptions Options(std::string secret = kSecret) {
  TcpOptions options;
  options.handshake.secret = std::move(secret);
  options.handshake_timeout = std::chrono::milliseconds(500);
  return options;
}

std::unique_ptr<Transport> Make(const TcpOptions& options) {
  auto t = MakeTcpTransport(options);
  REQUIRE(t.ok());
  return std::move(*t);
}

// Sends a Heartbeat over `conn` and waits for its echo.
void CheckEcho(const std::shared_ptr<Connection>& conn, Inbox& inbox, const std::string& text) {
  size_t before = inbox.messages().size();
  REQUIRE(conn->Send(MessageType::kHeartbeat, text).ok());
  REQUIRE(inbox.WaitForMessages(before + 1));
  CHECK(inbox.messages()[before].payload == text);
}

std::string HeaderWithLength(uint16_t type, uint32_t length) {
  std::string header = EncodeFrameHeader(type, "");
  std::memcpy(&header[8], &length, 4);
  return header;
}

TEST_CASE("hostile peers are cut off while a good client keeps working", "[runtime][transport]") {
  auto server = Make(Options());
  Inbox server_inbox;
  auto echo = [](const std::shared_ptr<Connection>& c, MessageType type, const std::string& p) {
    (void)c->Send(type, p);
  };
  auto address = server->Listen("127.0.0.1:0", server_inbox.Handler(echo));
  REQUIRE(address.ok());
  CHECK(address->rfind("127.0.0.1:", 0) == 0);
  CHECK(*address != "127.0.0.1:0");

  auto client = Make(Options());
  Inbox client_inbox;
  auto good = ConnectAndWait(*client, *address, client_inbox.Handler());
  REQUIRE(good.ok());
  CheckEcho(*good, client_inbox, "before");

  SECTION("garbage instead of a frame") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    raw.Write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
  }
  SECTION("a header claiming 4 GiB before the handshake") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    raw.Write(HeaderWithLength(static_cast<uint16_t>(MessageType::kHandshakeHello), 0xFFFFFFFFu));
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
  }
  SECTION("a header claiming 2 KiB before the handshake (over the pre-auth limit)") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    raw.Write(HeaderWithLength(static_cast<uint16_t>(MessageType::kHandshakeHello), 2048));
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
  }
  SECTION("another protocol version") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    std::string frame =
        EncodeFrame(static_cast<uint16_t>(MessageType::kHandshakeHello), std::string(35, '\0'));
    frame[4] = static_cast<char>(kProtocolVersion + 1);
    raw.Write(frame);
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
  }
  SECTION("a message instead of the handshake") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    raw.Write(EncodeFrame(static_cast<uint16_t>(MessageType::kPushRun), "unauthenticated"));
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
  }
  SECTION("silence: the handshake timeout closes it") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    auto start = Clock::now();
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
    CHECK(Clock::now() - start >= std::chrono::milliseconds(400));
  }
  SECTION("the wrong secret") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    Status s = raw.Handshake(HandshakeConfig{"wrong", false});
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    auto wrong = Make(Options("wrong"));
    auto conn = ConnectAndWait(*wrong, *address, Inbox().Handler());
    CHECK(conn.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(conn.status().message(), Catch::Contains("failed to prove"));
  }
  SECTION("no secret at all") {
    TcpOptions insecure;
    insecure.handshake.insecure = true;
    auto t = Make(insecure);
    auto conn = ConnectAndWait(*t, *address, Inbox().Handler());
    CHECK(conn.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(conn.status().message(), Catch::Contains("insecure"));
  }
  SECTION("an authenticated peer that sends a bad checksum") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    REQUIRE(raw.Handshake(HandshakeConfig{kSecret, false}).ok());
    REQUIRE(server_inbox.WaitForOpened(2));
    std::string frame = EncodeFrame(static_cast<uint16_t>(MessageType::kHeartbeat), "payload");
    frame.back() ^= 0x40;
    raw.Write(frame);
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
    REQUIRE(server_inbox.WaitForClosed(1));
    CHECK(server_inbox.closed()[0].code() == StatusCode::kCorruption);
  }
  SECTION("an authenticated peer that sends a handshake frame again") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    REQUIRE(raw.Handshake(HandshakeConfig{kSecret, false}).ok());
    raw.Write(
        EncodeFrame(static_cast<uint16_t>(MessageType::kHandshakeHello), std::string(35, '\0')));
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
    REQUIRE(server_inbox.WaitForClosed(1));
    CHECK(server_inbox.closed()[0].code() == StatusCode::kCorruption);
  }
  SECTION("an authenticated peer whose frame is over the limit") {
    RawSocket raw;
    REQUIRE(raw.Connect(*address).ok());
    REQUIRE(raw.Handshake(HandshakeConfig{kSecret, false}).ok());
    raw.Write(HeaderWithLength(static_cast<uint16_t>(MessageType::kPushRun),
                               kDefaultMaxFramePayloadBytes + 1));
    CHECK(raw.ClosedByPeerWithin(testing::kWait));
  }

  // The good connection is untouched, and the server still accepts newcomers.
  CheckEcho(*good, client_inbox, "after");
  Inbox second_inbox;
  auto second = ConnectAndWait(*client, *address, second_inbox.Handler());
  REQUIRE(second.ok());
  CheckEcho(*second, second_inbox, "newcomer");
}

TEST_CASE("an authenticated raw peer receives what the server sends", "[runtime][transport]") {
  auto server = Make(Options());
  ConnectionHandler greet;
  greet.on_open = [](const std::shared_ptr<Connection>& c) {
    (void)c->Send(MessageType::kWelcome, "welcome");
  };
  greet.on_message = [](const std::shared_ptr<Connection>&, MessageType, std::string) {};
  auto address = server->Listen("127.0.0.1:0", greet);
  REQUIRE(address.ok());
  RawSocket raw;
  REQUIRE(raw.Connect(*address).ok());
  REQUIRE(raw.Handshake(HandshakeConfig{kSecret, false}).ok());
  auto frame = raw.ReadFrame();
  REQUIRE(frame.ok());
  CHECK(frame->first == static_cast<uint16_t>(MessageType::kWelcome));
  CHECK(frame->second == "welcome");
}

TEST_CASE("insecure nodes talk to each other", "[runtime][transport]") {
  TcpOptions insecure;
  insecure.handshake.insecure = true;
  auto server = Make(insecure);
  Inbox server_inbox;
  auto address = server->Listen("127.0.0.1:0", server_inbox.Handler());
  REQUIRE(address.ok());
  auto client = Make(insecure);
  auto conn = ConnectAndWait(*client, *address, Inbox().Handler());
  REQUIRE(conn.ok());
  REQUIRE((*conn)->Send(MessageType::kHeartbeat, "hi").ok());
  REQUIRE(server_inbox.WaitForMessages(1));
}

TEST_CASE("a TCP transport needs a secret or --insecure", "[runtime][transport]") {
  TcpOptions none;
  CHECK(MakeTcpTransport(none).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("addresses: host names, busy ports, malformed input", "[runtime][transport]") {
  auto server = Make(Options());
  Inbox server_inbox;
  auto address = server->Listen("127.0.0.1:0", server_inbox.Handler());
  REQUIRE(address.ok());
  std::string port = address->substr(address->rfind(':') + 1);

  auto client = Make(Options());
  auto by_name = ConnectAndWait(*client, "localhost:" + port, Inbox().Handler());
  // localhost may resolve to ::1 first; asio tries every address in turn.
  REQUIRE(by_name.ok());
  CHECK((*by_name)->peer() == "localhost:" + port);
  REQUIRE(server_inbox.WaitForOpened(1));
  CHECK(server_inbox.opened()[0]->peer().rfind("127.0.0.1:", 0) == 0);

  auto busy = server->Listen(*address, Inbox().Handler());
  CHECK(busy.status().code() == StatusCode::kUnavailable);
  CHECK(server->Listen("127.0.0.1", Inbox().Handler()).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(server->Listen("127.0.0.1:99999", Inbox().Handler()).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("a peer that goes away is reported as unavailable", "[runtime][transport]") {
  auto server = Make(Options());
  Inbox server_inbox;
  auto address = server->Listen("127.0.0.1:0", server_inbox.Handler());
  REQUIRE(address.ok());
  {
    auto client = Make(Options());
    auto conn = ConnectAndWait(*client, *address, Inbox().Handler());
    REQUIRE(conn.ok());
    REQUIRE(server_inbox.WaitForOpened(1));
  }  // the client process "dies"
  REQUIRE(server_inbox.WaitForClosed(1));
  CHECK(server_inbox.closed()[0].code() == StatusCode::kUnavailable);
}

TEST_CASE("cancelled timers do not pile up until they would have been due",
          "[runtime][transport]") {
  // A worker arms a reply timeout of minutes per map task and the master a step bound per step;
  // nearly all are cancelled within milliseconds. Held until due, they grew a long-lived
  // process by about a megabyte per job.
  auto t = Make(Options());
  for (int i = 0; i < 10000; ++i) t->RunAfter(std::chrono::hours(1), [] {}).Cancel();
  std::vector<TimerHandle> live;
  for (int i = 0; i < 100; ++i) live.push_back(t->RunAfter(std::chrono::hours(1), [] {}));
  const TcpStats stats = GetTcpStats(*t);
  CHECK(stats.pending_timers >= 100);  // the live ones stay
  CHECK(stats.pending_timers < 600);
  // A live timer still fires after the sweeps.
  std::promise<void> fired;
  t->RunAfter(std::chrono::milliseconds(1), [&] { fired.set_value(); });
  CHECK(fired.get_future().wait_for(testing::kWait) == std::future_status::ready);
  for (auto& handle : live) CHECK_FALSE(handle.cancelled());
}

}  // namespace
}  // namespace mrtrain::runtime
