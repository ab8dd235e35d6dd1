// The contract of transport.h, checked against every implementation: in-process (plain and
// with frame checks) and TCP on 127.0.0.1 with OS-chosen ports.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/crc32c.h"
#include "runtime/protocol/messages.h"
#include "runtime/transport/in_process_transport.h"
#include "runtime/transport/tcp_transport.h"
#include "runtime/transport/transport.h"
#include "test/runtime/transport/transport_test_util.h"

namespace mrtrain::runtime {
namespace {

using testing::ConnectAndWait;
using testing::Inbox;
using testing::Pattern;
using Clock = std::chrono::steady_clock;

// A server and a client transport of one kind. In-process, both are the same object (its
// endpoints live in it); over TCP they are separate, as in separate processes.
struct Cluster {
  std::string kind;
  std::unique_ptr<Transport> server_owner, client_owner;
  Transport* server = nullptr;
  Transport* client = nullptr;
  std::string listen_address;

  explicit Cluster(std::string k, TransportLimits limits = {}) : kind(std::move(k)) {
    if (kind == "tcp") {
      TcpOptions options;
      options.handshake.secret = "conformance secret";
      options.limits = limits;
      options.handshake_timeout = std::chrono::seconds(10);
      server_owner = MakeTcpTransport(options).value();
      client_owner = MakeTcpTransport(options).value();
      client = client_owner.get();
      listen_address = "127.0.0.1:0";
    } else {
      InProcessOptions options;
      options.limits = limits;
      options.check_frames = kind == "inproc+frames";
      server_owner = MakeInProcessTransport(options);
      client = server_owner.get();
      listen_address = "inproc://";
    }
    server = server_owner.get();
  }
};

TEST_CASE("messages flow both ways in order", "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "inproc+frames", "tcp");
  INFO(kind);
  Cluster cluster(kind);
  constexpr int kCount = 2000;

  // The server echoes every Hello back as a Welcome, on the transport thread. Catch2's macros
  // are not thread-safe: other threads count failures, the test thread checks the counts.
  auto failed_sends = std::make_shared<std::atomic<int>>(0);
  Inbox server_inbox;
  server_inbox.set_transport(cluster.server);
  auto echo = [failed_sends](const std::shared_ptr<Connection>& c, MessageType type,
                             const std::string& p) {
    if (type == MessageType::kHello && !c->Send(MessageType::kWelcome, p).ok()) ++*failed_sends;
  };
  Result<std::string> address =
      cluster.server->Listen(cluster.listen_address, server_inbox.Handler(echo));
  REQUIRE(address.ok());

  Inbox client_inbox;
  client_inbox.set_transport(cluster.client);
  auto conn = ConnectAndWait(*cluster.client, *address, client_inbox.Handler());
  REQUIRE(conn.ok());
  REQUIRE(server_inbox.WaitForOpened(1));
  std::shared_ptr<Connection> server_side = server_inbox.opened()[0];

  // Client -> server from this thread while the server pushes its own stream from another.
  std::thread pusher([&] {
    for (int i = 0; i < kCount; ++i) {
      if (!server_side->Send(MessageType::kHeartbeat, Pattern(i % 300, i)).ok()) ++*failed_sends;
    }
  });
  for (int i = 0; i < kCount; ++i) {
    REQUIRE((*conn)->Send(MessageType::kHello, Pattern(i % 500, i)).ok());
  }
  pusher.join();
  CHECK(*failed_sends == 0);

  REQUIRE(client_inbox.WaitForMessages(2 * kCount));
  REQUIRE(server_inbox.WaitForMessages(kCount));
  std::vector<testing::Received> server_got = server_inbox.messages();
  for (int i = 0; i < kCount; ++i) {
    REQUIRE(server_got[i].type == MessageType::kHello);
    REQUIRE(server_got[i].payload == Pattern(i % 500, i));
  }
  int echoes = 0, pushes = 0;
  for (const testing::Received& r : client_inbox.messages()) {
    if (r.type == MessageType::kWelcome) {
      REQUIRE(r.payload == Pattern(echoes % 500, echoes));
      ++echoes;
    } else {
      REQUIRE(r.type == MessageType::kHeartbeat);
      REQUIRE(r.payload == Pattern(pushes % 300, pushes));
      ++pushes;
    }
  }
  CHECK(echoes == kCount);
  CHECK(pushes == kCount);
  CHECK(server_inbox.off_thread_callbacks() == 0);
  CHECK(client_inbox.off_thread_callbacks() == 0);
}

TEST_CASE("typed messages travel with SendMessage and decode on arrival", "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  Cluster cluster(kind);
  Inbox server_inbox;
  auto address = cluster.server->Listen(cluster.listen_address, server_inbox.Handler());
  REQUIRE(address.ok());
  auto conn = ConnectAndWait(*cluster.client, *address, Inbox().Handler());
  REQUIRE(conn.ok());
  msg::RunMapTask task{9, 1, 2, 3, 0, 17, 0.05};
  REQUIRE(SendMessage(**conn, task).ok());
  REQUIRE(server_inbox.WaitForMessages(1));
  testing::Received got = server_inbox.messages()[0];
  CHECK(got.type == MessageType::kRunMapTask);
  auto decoded = msg::DecodeAs<msg::RunMapTask>(got.payload);
  REQUIRE(decoded.ok());
  CHECK(decoded->partition == 3);
  CHECK(decoded->step == 17);
}

TEST_CASE("a 64 MiB payload arrives intact", "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc+frames", "tcp");
  INFO(kind);
  Cluster cluster(kind);
  Inbox server_inbox;
  auto failed_sends = std::make_shared<std::atomic<int>>(0);
  auto echo = [failed_sends](const std::shared_ptr<Connection>& c, MessageType,
                             const std::string& p) {
    if (!c->Send(MessageType::kParamsReply, p).ok()) ++*failed_sends;
  };
  auto address = cluster.server->Listen(cluster.listen_address, server_inbox.Handler(echo));
  REQUIRE(address.ok());
  Inbox client_inbox;
  auto conn = ConnectAndWait(*cluster.client, *address, client_inbox.Handler());
  REQUIRE(conn.ok());
  const std::string big = Pattern(64u << 20, 7);
  REQUIRE((*conn)->Send(MessageType::kPushRun, big).ok());
  REQUIRE((*conn)->Send(MessageType::kHeartbeat, "after").ok());
  REQUIRE(client_inbox.WaitForMessages(2));
  auto got = client_inbox.messages();
  CHECK(got[0].type == MessageType::kParamsReply);
  CHECK(got[0].payload.size() == big.size());
  CHECK(got[0].payload == big);
  CHECK(got[1].payload == "after");
  CHECK(*failed_sends == 0);
}

// A payload in pieces: a head and a tail of `tail_bytes` owned by a string the payload keeps.
GatherPayload Pieces(const std::string& head, size_t tail_bytes, uint32_t seed) {
  auto tail = std::make_shared<const std::string>(Pattern(tail_bytes, seed));
  GatherPayload payload(head);
  payload.tail = *tail;
  payload.tail_crc32c = Crc32c(tail->data(), tail->size());
  payload.owner = std::move(tail);
  return payload;
}

TEST_CASE("a payload sent in pieces arrives as the joined bytes, its checksum known to TCP",
          "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "inproc+frames", "tcp");
  INFO(kind);
  Cluster cluster(kind);
  // What the receiver's connection says it checked, per message (on the transport thread).
  auto crcs = std::make_shared<std::vector<std::optional<uint32_t>>>();
  auto record = [crcs](const std::shared_ptr<Connection>& c, MessageType, const std::string&) {
    crcs->push_back(c->delivered_crc32c());
  };
  Inbox server_inbox;
  auto address = cluster.server->Listen(cluster.listen_address, server_inbox.Handler(record));
  REQUIRE(address.ok());
  auto conn = ConnectAndWait(*cluster.client, *address, Inbox().Handler());
  REQUIRE(conn.ok());
  GatherPayload big = Pieces("head of a run", 3u << 20, 11);
  const std::string joined = big.Join();
  REQUIRE((*conn)->SendGather(MessageType::kPushRun, std::move(big)).ok());
  REQUIRE((*conn)->SendGather(MessageType::kPushRun, GatherPayload("no tail")).ok());
  REQUIRE((*conn)->SendGather(MessageType::kPushRun, Pieces("", 5, 2)).ok());
  REQUIRE(server_inbox.WaitForMessages(3));
  auto got = server_inbox.messages();
  CHECK(got[0].type == MessageType::kPushRun);
  CHECK(got[0].payload == joined);
  CHECK(got[1].payload == "no tail");
  CHECK(got[2].payload == Pattern(5, 2));
  REQUIRE(crcs->size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    if (kind == "tcp") {
      REQUIRE((*crcs)[i].has_value());
      CHECK(*(*crcs)[i] == Crc32c(got[i].payload.data(), got[i].payload.size()));
    } else {
      CHECK(!(*crcs)[i].has_value());  // in-process checks no frame, so vouches for nothing
    }
  }
  // A payload in pieces over the frame limit is refused like one in a string.
  TransportLimits limits;
  limits.max_frame_payload_bytes = 1000;
  Cluster small(kind, limits);
  auto small_address = small.server->Listen(small.listen_address, Inbox().Handler());
  REQUIRE(small_address.ok());
  auto small_conn = ConnectAndWait(*small.client, *small_address, Inbox().Handler());
  REQUIRE(small_conn.ok());
  CHECK((*small_conn)->SendGather(MessageType::kPushRun, Pieces("h", 1000, 1)).code() ==
        StatusCode::kInvalidArgument);
  CHECK((*small_conn)->SendGather(MessageType::kPushRun, Pieces("h", 999, 1)).ok());
}

TEST_CASE("in-process, a message goes over as itself to a handler that takes messages",
          "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "inproc+frames", "tcp");
  const bool takes = GENERATE(true, false);
  INFO(kind << (takes ? ", takes messages" : ", bytes only"));
  Cluster cluster(kind);
  auto handed = std::make_shared<std::vector<std::shared_ptr<const void>>>();
  auto take = [handed](const std::shared_ptr<Connection>& c, MessageType, const std::string&) {
    handed->push_back(c->TakeDeliveredMessage());
  };
  Inbox server_inbox;
  ConnectionHandler handler = server_inbox.Handler(take);
  handler.takes_messages = takes;
  auto address = cluster.server->Listen(cluster.listen_address, handler);
  REQUIRE(address.ok());
  auto conn = ConnectAndWait(*cluster.client, *address, Inbox().Handler());
  REQUIRE(conn.ok());
  auto push = std::make_shared<msg::PushRun>();
  push->step = 5;
  push->keys = {7};
  push->offsets = {0, 3};
  push->values = {1, 2, 3};
  push->values_crc32c = Crc32c(push->values.data(), 12);
  Result<GatherPayload> payload = msg::EncodeGather(push);
  REQUIRE(payload.ok());
  const std::string bytes = payload->Join();
  REQUIRE((*conn)->SendGather(MessageType::kPushRun, std::move(*payload)).ok());
  REQUIRE(server_inbox.WaitForMessages(1));
  const testing::Received got = server_inbox.messages()[0];
  CHECK(got.type == MessageType::kPushRun);
  REQUIRE(handed->size() == 1);
  if (kind == "inproc" && takes) {
    // Not encoded, copied or checksummed: the sender's own message, and no bytes.
    CHECK(handed->front().get() == push.get());
    CHECK(got.payload.empty());
  } else {
    CHECK(handed->front() == nullptr);
    CHECK(got.payload == bytes);
  }
}

TEST_CASE("a tail that no longer matches the checksum it came with fails the frame over TCP",
          "[runtime][transport]") {
  Cluster cluster("tcp");
  Inbox server_inbox;
  auto address = cluster.server->Listen(cluster.listen_address, server_inbox.Handler());
  REQUIRE(address.ok());
  auto conn = ConnectAndWait(*cluster.client, *address, Inbox().Handler());
  REQUIRE(conn.ok());
  // The sender trusts tail_crc32c (the run's values_crc32c) and reads the tail only to write
  // it: floats changed after their checksum was taken are caught by the receiver's frame check.
  GatherPayload changed = Pieces("head", 4096, 3);
  *changed.tail_crc32c ^= 1;
  REQUIRE((*conn)->SendGather(MessageType::kPushRun, std::move(changed)).ok());
  REQUIRE(server_inbox.WaitForClosed(1));
  CHECK(server_inbox.messages().empty());
  const Status why = server_inbox.closed()[0];
  CHECK(why.code() == StatusCode::kCorruption);
  CHECK(why.message().find("frame checksum mismatch") != std::string::npos);
}

TEST_CASE("a payload over the frame limit is refused by Send", "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  TransportLimits limits;
  limits.max_frame_payload_bytes = 1000;
  Cluster cluster(kind, limits);
  Inbox server_inbox;
  auto address = cluster.server->Listen(cluster.listen_address, server_inbox.Handler());
  REQUIRE(address.ok());
  auto conn = ConnectAndWait(*cluster.client, *address, Inbox().Handler());
  REQUIRE(conn.ok());
  Status s = (*conn)->Send(MessageType::kPushRun, std::string(1001, 'x'));
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK((*conn)->Send(MessageType::kPushRun, std::string(1000, 'x')).ok());
  REQUIRE(server_inbox.WaitForMessages(1));
}

TEST_CASE("Close delivers what was sent, then both sides hear of it once", "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  INFO(kind);
  Cluster cluster(kind);
  Inbox server_inbox;
  auto address = cluster.server->Listen(cluster.listen_address, server_inbox.Handler());
  REQUIRE(address.ok());
  Inbox client_inbox;
  auto conn = ConnectAndWait(*cluster.client, *address, client_inbox.Handler());
  REQUIRE(conn.ok());
  for (int i = 0; i < 100; ++i) {
    REQUIRE((*conn)->Send(MessageType::kHeartbeat, Pattern(10000, i)).ok());
  }
  (*conn)->Close();
  CHECK((*conn)->Send(MessageType::kHeartbeat, "late").code() == StatusCode::kUnavailable);
  (*conn)->Close();  // idempotent
  REQUIRE(client_inbox.WaitForClosed(1));
  REQUIRE(server_inbox.WaitForClosed(1));
  CHECK(client_inbox.closed()[0].ok());
  CHECK(server_inbox.closed()[0].code() == StatusCode::kUnavailable);
  auto got = server_inbox.messages();
  REQUIRE(got.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(got[i].payload == Pattern(10000, i));
  // Still exactly once, a little later.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(client_inbox.closed().size() == 1);
  CHECK(server_inbox.closed().size() == 1);
}

TEST_CASE("connecting to an address nobody listens on fails", "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  Cluster cluster(kind);
  std::string nowhere = kind == "tcp" ? "127.0.0.1:1" : "inproc://nobody";
  auto conn = ConnectAndWait(*cluster.client, nowhere, Inbox().Handler());
  CHECK(conn.status().code() == StatusCode::kUnavailable);
  auto bad =
      ConnectAndWait(*cluster.client, kind == "tcp" ? "no-port" : "tcp://x", Inbox().Handler());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Post and RunAfter run on the transport thread; a cancelled timer does not run",
          "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  Cluster cluster(kind);
  Transport* t = cluster.client;
  std::promise<bool> posted;
  t->Post([&] { posted.set_value(t->InTransportThread()); });
  auto posted_future = posted.get_future();
  REQUIRE(posted_future.wait_for(testing::kWait) == std::future_status::ready);
  CHECK(posted_future.get());
  CHECK_FALSE(t->InTransportThread());

  std::atomic<int> cancelled_runs{0};
  TimerHandle cancelled = t->RunAfter(std::chrono::milliseconds(30), [&] { ++cancelled_runs; });
  cancelled.Cancel();
  CHECK(cancelled.cancelled());
  std::promise<Clock::time_point> fired;
  auto start = Clock::now();
  t->RunAfter(std::chrono::milliseconds(60), [&] { fired.set_value(Clock::now()); });
  auto fired_future = fired.get_future();
  REQUIRE(fired_future.wait_for(testing::kWait) == std::future_status::ready);
  CHECK(fired_future.get() - start >= std::chrono::milliseconds(60));
  CHECK(cancelled_runs == 0);
}

TEST_CASE("a cancelled timer frees what its function captured at once, not when it is due",
          "[runtime][transport]") {
  // A worker arms a reply timeout of minutes for every map task and cancels it when the acks
  // come; if the transport kept the function until it was due, a long-lived worker would hold
  // every finished task's captures that long.
  std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  Cluster cluster(kind);
  auto captured = std::make_shared<std::string>(1 << 20, 'x');
  std::weak_ptr<std::string> watch = captured;
  TimerHandle timer =
      cluster.client->RunAfter(std::chrono::hours(1), [captured = std::move(captured)] {});
  CHECK_FALSE(watch.expired());
  timer.Cancel();
  CHECK(watch.expired());
  CHECK(timer.cancelled());
  timer.Cancel();  // idempotent
  // A timer that fired runs once and lets go of its function too.
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> fired_watch = token;
  std::promise<void> fired;
  TimerHandle done = cluster.client->RunAfter(
      std::chrono::milliseconds(1), [token = std::move(token), &fired] { fired.set_value(); });
  auto fired_future = fired.get_future();
  REQUIRE(fired_future.wait_for(testing::kWait) == std::future_status::ready);
  std::promise<void> after;
  cluster.client->Post([&] { after.set_value(); });
  REQUIRE(after.get_future().wait_for(testing::kWait) == std::future_status::ready);
  CHECK(fired_watch.expired());
  CHECK_FALSE(done.cancelled());
}

TEST_CASE("Stop with live connections returns promptly and closes each once",
          "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  INFO(kind);
  Cluster cluster(kind);
  Inbox server_inbox;
  auto address = cluster.server->Listen(cluster.listen_address, server_inbox.Handler());
  REQUIRE(address.ok());
  Inbox client_inbox;
  std::vector<std::shared_ptr<Connection>> conns;
  for (int i = 0; i < 3; ++i) {
    auto c = ConnectAndWait(*cluster.client, *address, client_inbox.Handler());
    REQUIRE(c.ok());
    conns.push_back(*c);
  }
  REQUIRE(server_inbox.WaitForOpened(3));
  std::atomic<bool> late_post_ran{false};

  auto start = Clock::now();
  cluster.server->Stop();
  auto took = Clock::now() - start;
  CHECK(took < std::chrono::seconds(2));
  cluster.server->Stop();  // idempotent
  cluster.server->Post([&] { late_post_ran = true; });

  // In-process, the server's and the client's ends are one transport: all six close.
  size_t expected_server_closes = 3;
  REQUIRE(server_inbox.WaitForClosed(expected_server_closes));
  for (const Status& s : server_inbox.closed()) CHECK(s.code() == StatusCode::kUnavailable);
  REQUIRE(client_inbox.WaitForClosed(3));
  for (const Status& s : client_inbox.closed()) CHECK(s.code() == StatusCode::kUnavailable);
  for (auto& c : conns)
    CHECK(c->Send(MessageType::kHeartbeat, "x").code() == StatusCode::kUnavailable);
  CHECK(cluster.server->Listen(cluster.listen_address, Inbox().Handler()).status().code() ==
        StatusCode::kFailedPrecondition);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK_FALSE(late_post_ran);
  CHECK(server_inbox.closed().size() == 3);

  // Connections outlive their transport harmlessly.
  cluster.client_owner.reset();
  cluster.server_owner.reset();
  for (auto& c : conns) {
    CHECK(c->Send(MessageType::kHeartbeat, "x").code() == StatusCode::kUnavailable);
    c->Close();
  }
}

TEST_CASE("a callback that throws closes its connection, not the transport",
          "[runtime][transport]") {
  std::string kind = GENERATE(as<std::string>{}, "inproc", "tcp");
  Cluster cluster(kind);
  Inbox server_inbox;
  auto thrower = [](const std::shared_ptr<Connection>&, MessageType type, const std::string&) {
    if (type == MessageType::kShutdown) throw std::runtime_error("handler bug");
  };
  auto address = cluster.server->Listen(cluster.listen_address, server_inbox.Handler(thrower));
  REQUIRE(address.ok());
  auto first = ConnectAndWait(*cluster.client, *address, Inbox().Handler());
  REQUIRE(first.ok());
  REQUIRE((*first)->Send(MessageType::kShutdown, "boom").ok());
  REQUIRE(server_inbox.WaitForClosed(1));
  CHECK(server_inbox.closed()[0].code() == StatusCode::kInternal);

  auto second = ConnectAndWait(*cluster.client, *address, Inbox().Handler());
  REQUIRE(second.ok());
  REQUIRE((*second)->Send(MessageType::kHeartbeat, "still here").ok());
  REQUIRE(server_inbox.WaitForMessages(1));
  CHECK(server_inbox.messages()[0].payload == "still here");
}

TEST_CASE("a sender to a peer that stops reading waits, then times out", "[runtime][transport]") {
  TransportLimits limits;
  limits.send_budget_bytes = 1 << 20;
  limits.send_timeout = std::chrono::milliseconds(300);
  TcpOptions options;
  options.handshake.secret = "s";
  options.limits = limits;
  auto client = MakeTcpTransport(options).value();
  testing::StalledServer server(options.handshake);
  auto conn = ConnectAndWait(*client, server.address(), Inbox().Handler());
  REQUIRE(conn.ok());
  REQUIRE(server.WaitForHandshake());

  // The kernel buffers take a few MiB; then the budget fills and Send blocks for send_timeout.
  const std::string chunk(256 << 10, 'x');
  Status s;
  int sent = 0;
  auto start = Clock::now();
  Clock::time_point last_ok = start;
  while (sent < 1000) {
    last_ok = Clock::now();
    s = (*conn)->Send(MessageType::kPushRun, chunk);
    if (!s.ok()) break;
    ++sent;
  }
  CHECK(s.code() == StatusCode::kDeadlineExceeded);
  CHECK_THAT(s.message(), Catch::Contains("reads too slowly"));
  CHECK(Clock::now() - last_ok >= std::chrono::milliseconds(300));
  CHECK(sent < 1000);

  // A sender blocked on a full queue is released by Stop.
  std::promise<Status> blocked;
  std::thread sender([&] { blocked.set_value((*conn)->Send(MessageType::kPushRun, chunk)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  client->Stop();
  auto f = blocked.get_future();
  REQUIRE(f.wait_for(testing::kWait) == std::future_status::ready);
  CHECK(f.get().code() == StatusCode::kUnavailable);
  sender.join();
}

TEST_CASE("in-process sends past the budget wait for delivery", "[runtime][transport]") {
  TransportLimits limits;
  limits.send_budget_bytes = 1000;
  limits.send_timeout = std::chrono::milliseconds(200);
  InProcessOptions options;
  options.limits = limits;
  auto transport = MakeInProcessTransport(options);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Inbox server_inbox;
  // A receiver that stalls the dispatcher (which callbacks must not do) until released.
  auto stall = [released](const std::shared_ptr<Connection>&, MessageType, const std::string&) {
    released.wait_for(testing::kWait);
  };
  auto address = transport->Listen("inproc://slow", server_inbox.Handler(stall));
  REQUIRE(address.ok());
  CHECK(*address == "inproc://slow");
  CHECK(transport->Listen("inproc://slow", Inbox().Handler()).status().code() ==
        StatusCode::kUnavailable);
  auto conn = ConnectAndWait(*transport, *address, Inbox().Handler());
  REQUIRE(conn.ok());
  REQUIRE((*conn)->Send(MessageType::kHeartbeat, std::string(900, 'a')).ok());
  // The first message is in the handler (stalled); the second fills the budget.
  REQUIRE((*conn)->Send(MessageType::kHeartbeat, std::string(900, 'b')).ok());
  auto start = Clock::now();
  Status s = (*conn)->Send(MessageType::kHeartbeat, std::string(900, 'c'));
  CHECK(s.code() == StatusCode::kDeadlineExceeded);
  CHECK(Clock::now() - start >= std::chrono::milliseconds(200));
  release.set_value();
  REQUIRE(server_inbox.WaitForMessages(2));
  CHECK((*conn)->Send(MessageType::kHeartbeat, std::string(900, 'd')).ok());
  REQUIRE(server_inbox.WaitForMessages(3));
}

}  // namespace
}  // namespace mrtrain::runtime
