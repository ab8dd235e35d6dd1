#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/status.h"
#include "runtime/protocol/protocol_constants.h"

namespace mrtrain::runtime {

// How a node proves it belongs to the cluster.
struct HandshakeConfig {
  std::string secret;     // the shared cluster secret; required unless insecure
  bool insecure = false;  // no secret: the handshake checks the protocol version only
};

// kInvalidArgument when config has no secret and is not insecure (DESIGN.md: secure by
// default; only --insecure runs without a secret).
Status ValidateHandshakeConfig(const HandshakeConfig& config);

enum class HandshakeRole : uint8_t {
  kClient,  // opened the connection
  kServer,  // accepted it
};

// A frame the handshake wants sent. Its payload is raw fixed-layout bytes (FORMAT.md), never an
// archive: nothing is deserialised before the peer has authenticated.
struct HandshakeFrame {
  MessageType type;
  std::string payload;
};

// The connection handshake as a state machine without sockets: the transport feeds it the frames
// it receives and sends the frames it returns.
//
//   client                                     server
//     Start(): Hello{version, mode, Nc}  ───►
//                                        ◄───  Challenge{version, mode, Ns, ProofS}
//     check ProofS; Proof{ProofC}        ───►
//                                        ◄───  Accept{}            check ProofC
//     done()                                   done()
//
//   ProofX = HMAC-SHA256(secret, "mrtrain handshake proof" | role X | version | mode | Nc | Ns)
//
// Nc and Ns are fresh 32-byte random nonces, so each side proves knowledge of the secret in a
// way bound to this connection: a recorded proof fails against a new nonce (replay), and a
// server's proof sent back to it fails as a client's (reflection: the role is in the MAC). Both
// sides must be in the same mode: a node with a secret refuses a node without one, either way.
// In insecure mode the proofs are zeros and only the version is checked.
//
// What this does not do: encrypt or authenticate the frames after the handshake. It keeps
// strangers and misconfigured nodes out of the cluster; run it on a network you trust against
// active attackers, or inside a VPN or tunnel.
//
// Any error is final: further calls return it again. On failure the transport sends
// RejectFrame(error) (best effort) and closes. Errors: kCorruption for malformed or unexpected
// frames; kFailedPrecondition for a failed proof, a mode or version mismatch, or a reject from
// the peer; kInternal if the random source fails.
// Thread-compatible.
class Handshake {
 public:
  Handshake(HandshakeRole role, HandshakeConfig config);
  ~Handshake();
  Handshake(const Handshake&) = delete;
  Handshake& operator=(const Handshake&) = delete;

  // The frames to send first: the client's Hello; nothing for the server.
  // REQUIRES: called once, before OnFrame().
  Result<std::vector<HandshakeFrame>> Start();

  // One frame from the peer. Returns the frames to send in reply (possibly none).
  Result<std::vector<HandshakeFrame>> OnFrame(uint16_t type, std::string_view payload);

  // True once the peer has proved itself and (client) the server has accepted us. The server is
  // done when it returns Accept; the client when it receives it.
  bool done() const { return state_ == State::kDone; }
  HandshakeRole role() const { return role_; }

  // A frame telling the peer why we give up. The reason is cut to kMaxRejectReasonBytes.
  static HandshakeFrame RejectFrame(const Status& why);

 private:
  enum class State {
    kNew,
    kAwaitHello,
    kAwaitChallenge,
    kAwaitProof,
    kAwaitAccept,
    kDone,
    kFailed
  };
  using Nonce = std::array<uint8_t, kHandshakeNonceBytes>;
  using Proof = std::array<uint8_t, kHandshakeProofBytes>;

  Result<std::vector<HandshakeFrame>> Step(uint16_t type, std::string_view payload);
  Result<std::vector<HandshakeFrame>> OnHello(std::string_view payload);
  Result<std::vector<HandshakeFrame>> OnChallenge(std::string_view payload);
  Result<std::vector<HandshakeFrame>> OnProof(std::string_view payload);
  Status CheckVersionAndMode(uint16_t version, uint8_t mode) const;
  Result<Proof> MakeProof(HandshakeRole prover) const;
  Status VerifyProof(HandshakeRole prover, const uint8_t* proof) const;
  uint8_t mode() const;

  // Constant after construction.
  const HandshakeRole role_;
  HandshakeConfig config_;  // the secret is wiped on destruction

  State state_ = State::kNew;
  Status error_;  // why state_ is kFailed
  Nonce client_nonce_{};
  Nonce server_nonce_{};
};

// The cluster secret: the contents of `file_path` when it is non-empty (trailing whitespace and
// newlines dropped), else the value of the environment variable `env_var_name` (may be null).
// A file that group or others may read or write is used, with a warning to chmod 600 it.
// Errors: kNotFound when neither is set (the caller decides whether --insecure allows that),
// kIOError when the file cannot be read, kInvalidArgument for an empty secret or a file over
// 64 KiB. The secret itself is never logged.
Result<std::string> LoadClusterSecret(const std::string& file_path, const char* env_var_name);

// A fresh random secret (64 hex characters), for local multi-process mode that makes its own.
Result<std::string> GenerateClusterSecret();

}  // namespace mrtrain::runtime
