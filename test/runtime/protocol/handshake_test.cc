#include "runtime/protocol/handshake.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstdlib>
#include <deque>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "engine/base/log.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::runtime {
namespace {

constexpr char kSecret[] = "correct horse battery staple";

HandshakeConfig Secret(std::string secret) { return HandshakeConfig{std::move(secret), false}; }
HandshakeConfig Insecure() { return HandshakeConfig{"", true}; }

struct Wire {
  uint16_t type;
  std::string payload;
};

// Runs a client and a server against each other until both are done or one fails; returns the
// first error (OK when both finished) and records every frame that crossed.
Status Exchange(Handshake& client, Handshake& server, std::vector<Wire>* transcript = nullptr) {
  std::deque<std::pair<bool, HandshakeFrame>> in_flight;  // (to_server, frame)
  auto queue = [&](bool to_server, std::vector<HandshakeFrame> frames) {
    for (auto& f : frames) in_flight.emplace_back(to_server, std::move(f));
  };
  auto started = client.Start();
  if (!started.ok()) return started.status();
  queue(true, std::move(*started));
  auto server_started = server.Start();
  if (!server_started.ok()) return server_started.status();
  while (!in_flight.empty()) {
    auto [to_server, frame] = std::move(in_flight.front());
    in_flight.pop_front();
    auto type = static_cast<uint16_t>(frame.type);
    if (transcript) transcript->push_back({type, frame.payload});
    Handshake& receiver = to_server ? server : client;
    auto replies = receiver.OnFrame(type, frame.payload);
    if (!replies.ok()) return replies.status();
    queue(!to_server, std::move(*replies));
  }
  return client.done() && server.done() ? Status::Ok() : InternalError("handshake stalled");
}

// version:u16 (little-endian) and mode 1 (HMAC-SHA256), as Hello and Challenge start.
std::string VersionAndMode(uint16_t version = kProtocolVersion) {
  return std::string{static_cast<char>(version & 0xff), static_cast<char>(version >> 8), '\x01'};
}

// The client proof as FORMAT.md defines it, computed independently of handshake.cc.
std::string ClientProof(const std::string& secret, const std::string& client_nonce,
                        const std::string& server_nonce) {
  std::string input = "mrtrain handshake proofC";
  input += static_cast<char>(kProtocolVersion & 0xff);  // version:u16, little-endian
  input += static_cast<char>(kProtocolVersion >> 8);
  input += '\x01';  // mode HMAC-SHA256
  input += client_nonce + server_nonce;
  unsigned char out[32];
  size_t len = 0;
  REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                    reinterpret_cast<const unsigned char*>(input.data()), input.size(), out,
                    sizeof(out), &len) != nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

TEST_CASE("handshake succeeds with the same secret and proves both sides", "[runtime][protocol]") {
  Handshake client(HandshakeRole::kClient, Secret(kSecret));
  Handshake server(HandshakeRole::kServer, Secret(kSecret));
  std::vector<Wire> transcript;
  Status s = Exchange(client, server, &transcript);
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(transcript.size() == 4);
  CHECK(transcript[0].type == static_cast<uint16_t>(MessageType::kHandshakeHello));
  CHECK(transcript[0].payload.size() == 35);
  CHECK(transcript[1].type == static_cast<uint16_t>(MessageType::kHandshakeChallenge));
  CHECK(transcript[1].payload.size() == 67);
  CHECK(transcript[2].type == static_cast<uint16_t>(MessageType::kHandshakeProof));
  CHECK(transcript[3].type == static_cast<uint16_t>(MessageType::kHandshakeAccept));
  // The client proof is the documented HMAC.
  std::string client_nonce = transcript[0].payload.substr(3, 32);
  std::string server_nonce = transcript[1].payload.substr(3, 32);
  CHECK(transcript[2].payload == ClientProof(kSecret, client_nonce, server_nonce));
  // The secret never travels.
  for (const Wire& w : transcript) CHECK(w.payload.find(kSecret) == std::string::npos);
}

TEST_CASE("insecure handshake checks the version only", "[runtime][protocol]") {
  Handshake client(HandshakeRole::kClient, Insecure());
  Handshake server(HandshakeRole::kServer, Insecure());
  CHECK(Exchange(client, server).ok());
}

TEST_CASE("a wrong secret fails the handshake in either direction", "[runtime][protocol]") {
  SECTION("the server does not know the secret: the client refuses it") {
    Handshake client(HandshakeRole::kClient, Secret(kSecret));
    Handshake server(HandshakeRole::kServer, Secret("something else"));
    Status s = Exchange(client, server);
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(s.message(), Catch::Contains("server failed to prove"));
    CHECK_FALSE(client.done());
    CHECK_FALSE(server.done());
  }
  SECTION("the client does not know the secret: the server refuses its proof") {
    Handshake honest(HandshakeRole::kClient, Secret(kSecret));
    Handshake server(HandshakeRole::kServer, Secret(kSecret));
    REQUIRE(server.Start().ok());
    auto hello = *honest.Start();
    auto challenge = server.OnFrame(static_cast<uint16_t>(hello[0].type), hello[0].payload);
    REQUIRE(challenge.ok());
    std::string client_nonce = hello[0].payload.substr(3, 32);
    std::string server_nonce = (*challenge)[0].payload.substr(3, 32);
    // A client that skips checking the server and proves with the wrong secret.
    auto r = server.OnFrame(static_cast<uint16_t>(MessageType::kHandshakeProof),
                            ClientProof("guess", client_nonce, server_nonce));
    CHECK(r.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(r.status().message(), Catch::Contains("client failed to prove"));
    CHECK_FALSE(server.done());
    // The error is final.
    auto again = server.OnFrame(static_cast<uint16_t>(MessageType::kHandshakeProof),
                                ClientProof(kSecret, client_nonce, server_nonce));
    CHECK(again.status().code() == StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("a recorded client proof cannot be replayed", "[runtime][protocol]") {
  Handshake client(HandshakeRole::kClient, Secret(kSecret));
  Handshake server(HandshakeRole::kServer, Secret(kSecret));
  std::vector<Wire> transcript;
  REQUIRE(Exchange(client, server, &transcript).ok());

  // An eavesdropper replays the client's Hello and Proof to a fresh server session.
  Handshake victim(HandshakeRole::kServer, Secret(kSecret));
  REQUIRE(victim.Start().ok());
  REQUIRE(victim.OnFrame(transcript[0].type, transcript[0].payload).ok());
  auto r = victim.OnFrame(transcript[2].type, transcript[2].payload);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK_FALSE(victim.done());
}

TEST_CASE("a server's own proof reflected back as a client proof fails", "[runtime][protocol]") {
  Handshake server(HandshakeRole::kServer, Secret(kSecret));
  REQUIRE(server.Start().ok());
  // The attacker opens a connection and sends a Hello with any nonce.
  std::string hello = VersionAndMode() + std::string(32, 'n');
  auto challenge = server.OnFrame(static_cast<uint16_t>(MessageType::kHandshakeHello), hello);
  REQUIRE(challenge.ok());
  std::string server_proof = (*challenge)[0].payload.substr(35, 32);
  auto r = server.OnFrame(static_cast<uint16_t>(MessageType::kHandshakeProof), server_proof);
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);

  // Nor can a client be fooled by its own Hello nonce reflected: the server proof is bound to
  // the server role, which a client never computes.
  Handshake client(HandshakeRole::kClient, Secret(kSecret));
  auto client_hello = *client.Start();
  std::string reflected =
      VersionAndMode() + client_hello[0].payload.substr(3, 32) + std::string(32, '\0');
  auto r2 = client.OnFrame(static_cast<uint16_t>(MessageType::kHandshakeChallenge), reflected);
  CHECK(r2.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("handshake refuses another version or mode", "[runtime][protocol]") {
  SECTION("version") {
    Handshake server(HandshakeRole::kServer, Secret(kSecret));
    REQUIRE(server.Start().ok());
    std::string hello = VersionAndMode(kProtocolVersion + 1) + std::string(32, 'n');
    auto r = server.OnFrame(static_cast<uint16_t>(MessageType::kHandshakeHello), hello);
    CHECK(r.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(r.status().message(),
               Catch::Contains("protocol version " + std::to_string(kProtocolVersion + 1)));
  }
  SECTION("an insecure client and a server with a secret") {
    Handshake client(HandshakeRole::kClient, Insecure());
    Handshake server(HandshakeRole::kServer, Secret(kSecret));
    Status s = Exchange(client, server);
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(s.message(), Catch::Contains("insecure"));
  }
  SECTION("a client with a secret and an insecure server") {
    Handshake client(HandshakeRole::kClient, Secret(kSecret));
    Handshake server(HandshakeRole::kServer, Insecure());
    CHECK(Exchange(client, server).code() == StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("handshake rejects malformed and unexpected frames", "[runtime][protocol]") {
  Handshake server(HandshakeRole::kServer, Secret(kSecret));
  REQUIRE(server.Start().ok());
  SECTION("a message before the handshake") {
    auto r = server.OnFrame(static_cast<uint16_t>(MessageType::kPushRun), "data");
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK_THAT(r.status().message(), Catch::Contains("PushRun"));
  }
  SECTION("a short Hello") {
    auto r = server.OnFrame(static_cast<uint16_t>(MessageType::kHandshakeHello), "abc");
    CHECK(r.status().code() == StatusCode::kCorruption);
  }
  SECTION("a Reject from the peer") {
    auto r = server.OnFrame(static_cast<uint16_t>(MessageType::kHandshakeReject),
                            std::string("go away\x01\n", 9));
    CHECK(r.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(r.status().message(), Catch::EndsWith("go away??"));
  }
  SECTION("no secret and not insecure") {
    Handshake bad(HandshakeRole::kClient, HandshakeConfig{});
    CHECK(bad.Start().status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("cluster secret comes from the file first, then the environment", "[runtime][protocol]") {
  testing::TempDir dir;
  const char* kEnv = "MRTRAIN_TEST_HANDSHAKE_SECRET";
  ::setenv(kEnv, "from-env\n", 1);

  std::string file = dir.Write("secret", "from-file\n");
  ::chmod(file.c_str(), 0600);
  CHECK(*LoadClusterSecret(file, kEnv) == "from-file");
  CHECK(*LoadClusterSecret("", kEnv) == "from-env");

  ::unsetenv(kEnv);
  CHECK(LoadClusterSecret("", kEnv).status().code() == StatusCode::kNotFound);
  CHECK(LoadClusterSecret("", nullptr).status().code() == StatusCode::kNotFound);
  ::setenv(kEnv, "", 1);
  CHECK(LoadClusterSecret("", kEnv).status().code() == StatusCode::kInvalidArgument);
  ::unsetenv(kEnv);

  std::string empty = dir.Write("empty", "\n");
  ::chmod(empty.c_str(), 0600);
  CHECK(LoadClusterSecret(empty, kEnv).status().code() == StatusCode::kInvalidArgument);
  CHECK(LoadClusterSecret(dir.File("missing"), kEnv).status().code() == StatusCode::kNotFound);
}

TEST_CASE("a secret file others can read is used with a warning that omits the secret",
          "[runtime][protocol]") {
  testing::TempDir dir;
  std::string file = dir.Write("secret", "hunter2-hunter2");
  ::chmod(file.c_str(), 0644);
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(8);
  auto logger = Logger("transport");
  logger->sinks().push_back(sink);
  Result<std::string> secret = LoadClusterSecret(file, nullptr);
  logger->sinks().pop_back();
  CHECK(*secret == "hunter2-hunter2");
  std::vector<std::string> lines = sink->last_formatted();
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("0644") && Catch::Contains("chmod 600"));
  CHECK(lines[0].find("hunter2") == std::string::npos);
}

TEST_CASE("generated secrets are 64 fresh hex characters", "[runtime][protocol]") {
  std::string a = *GenerateClusterSecret(), b = *GenerateClusterSecret();
  CHECK(a.size() == 64);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(a != b);
}

}  // namespace
}  // namespace mrtrain::runtime
