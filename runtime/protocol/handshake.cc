#include "runtime/protocol/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "engine/base/log.h"

namespace mrtrain::runtime {
namespace {

constexpr uint8_t kModeInsecure = 0;
constexpr uint8_t kModeHmacSha256 = 1;
constexpr char kProofLabel[] = "mrtrain handshake proof";
constexpr size_t kHelloBytes = 2 + 1 + kHandshakeNonceBytes;
constexpr size_t kChallengeBytes = 2 + 1 + kHandshakeNonceBytes + kHandshakeProofBytes;
constexpr size_t kMaxSecretFileBytes = 64 << 10;

const char* ModeName(uint8_t mode) {
  return mode == kModeInsecure ? "insecure (no cluster secret)" : "HMAC-SHA256 cluster secret";
}

void AppendU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

uint16_t ReadU16(std::string_view in) {
  return static_cast<uint16_t>(static_cast<uint8_t>(in[0]) | (static_cast<uint8_t>(in[1]) << 8));
}

template <size_t N>
void AppendBytes(std::string* out, const std::array<uint8_t, N>& bytes) {
  out->append(reinterpret_cast<const char*>(bytes.data()), N);
}

template <size_t N>
void ReadBytes(std::string_view in, std::array<uint8_t, N>* bytes) {
  std::memcpy(bytes->data(), in.data(), N);
}

std::string UnexpectedFrame(uint16_t type, const char* expected) {
  return "unexpected " + MessageTypeName(type) + " frame during the handshake (expected " +
         expected + ")";
}

// Text from an unauthenticated peer goes into our logs: keep it short and printable.
std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxRejectReasonBytes)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

void TrimTrailingWhitespace(std::string* s) {
  while (!s->empty() &&
         (s->back() == '\n' || s->back() == '\r' || s->back() == ' ' || s->back() == '\t')) {
    s->pop_back();
  }
}

}  // namespace

Status ValidateHandshakeConfig(const HandshakeConfig& config) {
  if (!config.insecure && config.secret.empty()) {
    return InvalidArgumentError(
        "no cluster secret configured: give a secret file (or its environment variable), or "
        "pass --insecure on a trusted network");
  }
  return Status::Ok();
}

Handshake::Handshake(HandshakeRole role, HandshakeConfig config)
    : role_(role), config_(std::move(config)) {}

Handshake::~Handshake() {
  if (!config_.secret.empty()) OPENSSL_cleanse(config_.secret.data(), config_.secret.size());
}

uint8_t Handshake::mode() const { return config_.insecure ? kModeInsecure : kModeHmacSha256; }

Result<std::vector<HandshakeFrame>> Handshake::Start() {
  if (state_ != State::kNew) return FailedPreconditionError("handshake started twice");
  if (Status valid = ValidateHandshakeConfig(config_); !valid.ok()) {
    state_ = State::kFailed;
    error_ = valid;
    return valid;
  }
  if (role_ == HandshakeRole::kServer) {
    state_ = State::kAwaitHello;
    return std::vector<HandshakeFrame>();
  }
  if (RAND_bytes(client_nonce_.data(), static_cast<int>(client_nonce_.size())) != 1) {
    state_ = State::kFailed;
    error_ = InternalError("the random number generator failed to make a handshake nonce");
    return error_;
  }
  std::string hello;
  AppendU16(&hello, kProtocolVersion);
  hello.push_back(static_cast<char>(mode()));
  AppendBytes(&hello, client_nonce_);
  state_ = State::kAwaitChallenge;
  return std::vector<HandshakeFrame>{{MessageType::kHandshakeHello, std::move(hello)}};
}

Result<std::vector<HandshakeFrame>> Handshake::OnFrame(uint16_t type, std::string_view payload) {
  if (state_ == State::kFailed) return error_;
  if (state_ == State::kDone) return FailedPreconditionError("handshake already finished");
  if (state_ == State::kNew) return FailedPreconditionError("handshake not started");
  auto result = Step(type, payload);
  if (!result.ok()) {
    state_ = State::kFailed;
    error_ = result.status();
  }
  return result;
}

Result<std::vector<HandshakeFrame>> Handshake::Step(uint16_t type, std::string_view payload) {
  if (type == static_cast<uint16_t>(MessageType::kHandshakeReject)) {
    return FailedPreconditionError("the peer rejected the handshake: " + Printable(payload));
  }
  switch (state_) {
    case State::kAwaitHello:
      if (type != static_cast<uint16_t>(MessageType::kHandshakeHello)) break;
      return OnHello(payload);
    case State::kAwaitChallenge:
      if (type != static_cast<uint16_t>(MessageType::kHandshakeChallenge)) break;
      return OnChallenge(payload);
    case State::kAwaitProof:
      if (type != static_cast<uint16_t>(MessageType::kHandshakeProof)) break;
      return OnProof(payload);
    case State::kAwaitAccept:
      if (type != static_cast<uint16_t>(MessageType::kHandshakeAccept)) break;
      if (!payload.empty()) return CorruptionError("handshake Accept frame is not empty");
      state_ = State::kDone;
      return std::vector<HandshakeFrame>();
    default:
      break;
  }
  static constexpr const char* kExpected[] = {"nothing", "Hello",   "Challenge", "Proof",
                                              "Accept",  "nothing", "nothing"};
  return CorruptionError(UnexpectedFrame(type, kExpected[static_cast<int>(state_)]));
}

Status Handshake::CheckVersionAndMode(uint16_t version, uint8_t mode) const {
  if (version != kProtocolVersion) {
    return FailedPreconditionError("the peer speaks protocol version " + std::to_string(version) +
                                   ", this build speaks " + std::to_string(kProtocolVersion) +
                                   ": run the same mrtrain release on every node");
  }
  if (mode != kModeInsecure && mode != kModeHmacSha256) {
    return CorruptionError("unknown handshake mode " + std::to_string(mode));
  }
  if (mode != this->mode()) {
    return FailedPreconditionError(std::string("the peer runs with ") + ModeName(mode) +
                                   ", this node with " + ModeName(this->mode()) +
                                   ": give every node the same secret, or --insecure to all");
  }
  return Status::Ok();
}

Result<std::vector<HandshakeFrame>> Handshake::OnHello(std::string_view payload) {
  if (payload.size() != kHelloBytes) {
    return CorruptionError("handshake Hello of " + std::to_string(payload.size()) +
                           " bytes (expected " + std::to_string(kHelloBytes) + ")");
  }
  MRTRAIN_RETURN_IF_ERROR(CheckVersionAndMode(ReadU16(payload), static_cast<uint8_t>(payload[2])));
  ReadBytes(payload.substr(3), &client_nonce_);
  if (RAND_bytes(server_nonce_.data(), static_cast<int>(server_nonce_.size())) != 1) {
    return InternalError("the random number generator failed to make a handshake nonce");
  }
  MRTRAIN_ASSIGN_OR_RETURN(Proof proof, MakeProof(HandshakeRole::kServer));
  std::string challenge;
  AppendU16(&challenge, kProtocolVersion);
  challenge.push_back(static_cast<char>(mode()));
  AppendBytes(&challenge, server_nonce_);
  AppendBytes(&challenge, proof);
  state_ = State::kAwaitProof;
  return std::vector<HandshakeFrame>{{MessageType::kHandshakeChallenge, std::move(challenge)}};
}

Result<std::vector<HandshakeFrame>> Handshake::OnChallenge(std::string_view payload) {
  if (payload.size() != kChallengeBytes) {
    return CorruptionError("handshake Challenge of " + std::to_string(payload.size()) +
                           " bytes (expected " + std::to_string(kChallengeBytes) + ")");
  }
  MRTRAIN_RETURN_IF_ERROR(CheckVersionAndMode(ReadU16(payload), static_cast<uint8_t>(payload[2])));
  ReadBytes(payload.substr(3), &server_nonce_);
  const auto* server_proof =
      reinterpret_cast<const uint8_t*>(payload.data() + 3 + kHandshakeNonceBytes);
  MRTRAIN_RETURN_IF_ERROR(VerifyProof(HandshakeRole::kServer, server_proof));
  MRTRAIN_ASSIGN_OR_RETURN(Proof proof, MakeProof(HandshakeRole::kClient));
  std::string out;
  AppendBytes(&out, proof);
  state_ = State::kAwaitAccept;
  return std::vector<HandshakeFrame>{{MessageType::kHandshakeProof, std::move(out)}};
}

Result<std::vector<HandshakeFrame>> Handshake::OnProof(std::string_view payload) {
  if (payload.size() != kHandshakeProofBytes) {
    return CorruptionError("handshake Proof of " + std::to_string(payload.size()) +
                           " bytes (expected " + std::to_string(kHandshakeProofBytes) + ")");
  }
  MRTRAIN_RETURN_IF_ERROR(
      VerifyProof(HandshakeRole::kClient, reinterpret_cast<const uint8_t*>(payload.data())));
  state_ = State::kDone;
  return std::vector<HandshakeFrame>{{MessageType::kHandshakeAccept, std::string()}};
}

Result<Handshake::Proof> Handshake::MakeProof(HandshakeRole prover) const {
  Proof proof{};
  if (config_.insecure) return proof;
  std::string input(kProofLabel);
  input.push_back(prover == HandshakeRole::kClient ? 'C' : 'S');
  AppendU16(&input, kProtocolVersion);
  input.push_back(static_cast<char>(mode()));
  AppendBytes(&input, client_nonce_);
  AppendBytes(&input, server_nonce_);
  size_t length = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, config_.secret.data(),
                config_.secret.size(), reinterpret_cast<const unsigned char*>(input.data()),
                input.size(), proof.data(), proof.size(), &length) == nullptr ||
      length != proof.size()) {
    return InternalError("OpenSSL failed to compute HMAC-SHA256 for the handshake");
  }
  return proof;
}

Status Handshake::VerifyProof(HandshakeRole prover, const uint8_t* proof) const {
  if (config_.insecure) return Status::Ok();
  MRTRAIN_ASSIGN_OR_RETURN(Proof expected, MakeProof(prover));
  if (CRYPTO_memcmp(expected.data(), proof, expected.size()) != 0) {
    return FailedPreconditionError(
        std::string("the ") + (prover == HandshakeRole::kServer ? "server" : "client") +
        " failed to prove it knows the cluster secret (different secrets on the two nodes?)");
  }
  return Status::Ok();
}

HandshakeFrame Handshake::RejectFrame(const Status& why) {
  std::string reason = why.message().substr(0, kMaxRejectReasonBytes);
  return HandshakeFrame{MessageType::kHandshakeReject, std::move(reason)};
}

Result<std::string> LoadClusterSecret(const std::string& file_path, const char* env_var_name) {
  std::string secret;
  if (!file_path.empty()) {
    struct stat st {};
    if (::stat(file_path.c_str(), &st) != 0) {
      return NotFoundError("cluster secret file " + file_path + ": " + std::strerror(errno));
    }
    if (st.st_size > static_cast<off_t>(kMaxSecretFileBytes)) {
      return InvalidArgumentError("cluster secret file " + file_path + " is over 64 KiB");
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
      Logger("transport")
          ->warn(
              "cluster secret file {} has mode {}: group or others can access it; run "
              "chmod 600 {}",
              file_path, mode, file_path);
    }
    std::ifstream in(file_path, std::ios::binary);
    if (!in.is_open()) return IOError("cannot open cluster secret file " + file_path);
    secret.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) return IOError("cannot read cluster secret file " + file_path);
    TrimTrailingWhitespace(&secret);
    if (secret.empty())
      return InvalidArgumentError("cluster secret file " + file_path + " is empty");
    return secret;
  }
  const char* value = env_var_name != nullptr ? std::getenv(env_var_name) : nullptr;
  if (value == nullptr) {
    return NotFoundError(std::string("no cluster secret: give a secret file") +
                         (env_var_name != nullptr ? std::string(" or set $") + env_var_name : "") +
                         ", or pass --insecure on a trusted network");
  }
  secret = value;
  TrimTrailingWhitespace(&secret);
  if (secret.empty()) {
    return InvalidArgumentError(std::string("$") + env_var_name + " is set but empty");
  }
  return secret;
}

Result<std::string> GenerateClusterSecret() {
  std::array<uint8_t, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return InternalError("the random number generator failed to make a cluster secret");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string secret;
  for (uint8_t b : bytes) {
    secret.push_back(kHex[b >> 4]);
    secret.push_back(kHex[b & 15]);
  }
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return secret;
}

}  // namespace mrtrain::runtime
