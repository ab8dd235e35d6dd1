#pragma once

#include <chrono>
#include <memory>

#include "engine/base/status.h"
#include "runtime/protocol/handshake.h"
#include "runtime/transport/transport.h"

namespace mrtrain::runtime {

struct TcpOptions {
  // Every connection, both ways, starts with this handshake (handshake.h): the cluster secret,
  // or insecure (version check only), which the command line allows only with --insecure.
  HandshakeConfig handshake;
  TransportLimits limits;
  // From accept or Connect() to an authenticated connection: resolving, connecting and the
  // handshake together. A peer that stalls is cut off after this.
  std::chrono::milliseconds handshake_timeout{10000};
  // How long Close() waits for queued frames to be written before it closes anyway.
  std::chrono::milliseconds close_timeout{5000};
};

// The Boost.Asio TCP transport: one io_context run by one thread (the transport thread), one
// session per connection kept alive by the handlers it has in flight, one async_write in flight
// per connection, TCP_NODELAY and keepalive on every socket.
//
// A peer that fails the handshake (wrong secret, other version or mode, timeout) or breaks the
// protocol (bad magic, bad checksum, a length over the limit, which is checked before anything is
// allocated) gets its connection closed and a warning logged naming its address; nothing else
// is disturbed. Frames from a peer are decoded only after it has authenticated; before that,
// frames over kMaxHandshakeFramePayloadBytes are refused.
//
// Errors: kInvalidArgument when options.handshake has no secret and is not insecure.
Result<std::unique_ptr<Transport>> MakeTcpTransport(const TcpOptions& options);

}  // namespace mrtrain::runtime
