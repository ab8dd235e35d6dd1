#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/base/status.h"
#include "runtime/protocol/handshake.h"
#include "runtime/transport/transport.h"

namespace mrtrain::runtime {

inline constexpr size_t kDefaultMaxPendingConnections = 1024;

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
  // Accepted connections still in their handshake, at most: one more is closed at once (with a
  // warning, rate-limited). Each costs under 8 KiB until it authenticates (TcpStats), so the
  // default bounds what strangers can make a node hold to about 8 MiB.
  size_t max_pending_connections = kDefaultMaxPendingConnections;
  // Once a frame has begun arriving, a connection that sends none of the rest of it for this
  // long is closed (kDeadlineExceeded): a peer cannot hold a half-received frame, and the
  // payload reserved for it, for ever.
  std::chrono::milliseconds frame_timeout{60000};
};

// What a TCP transport holds for connections that have not authenticated yet, and its timers.
struct TcpStats {
  size_t pending_connections = 0;    // accepted, handshake not finished
  size_t pending_bytes = 0;          // reserved for them: session, read buffer, frame decoder
  uint64_t refused_connections = 0;  // closed at accept: max_pending_connections reached
  size_t pending_timers = 0;         // RunAfter timers held, cancelled ones not yet swept
};

// The stats of a transport made by MakeTcpTransport (zeros for any other). Safe from any thread
// but the transport's; waits for the transport thread to count.
TcpStats GetTcpStats(Transport& transport);

// The Boost.Asio TCP transport: one io_context run by one thread (the transport thread), one
// session per connection kept alive by the handlers it has in flight, one async_write in flight
// per connection, TCP_NODELAY and keepalive on every socket. A Send() on an authenticated
// connection with nothing queued writes the frame from the caller's thread, without blocking
// (the transport thread is not woken for it); what the socket does not take at once is queued
// and written by the transport thread.
//
// A peer that fails the handshake (wrong secret, other version or mode, timeout) or breaks the
// protocol (bad magic, bad checksum, a length over the limit, which is checked before anything is
// allocated) gets its connection closed and a warning logged naming its address; nothing else
// is disturbed. Frames from a peer are decoded only after it has authenticated; before that,
// frames over kMaxHandshakeFramePayloadBytes are refused, and the connection holds only a small
// read buffer (the large one comes with authentication). Warnings about refused and failed
// connections are rate-limited: a few per second, then one line counting the rest.
//
// Errors: kInvalidArgument when options.handshake has no secret and is not insecure.
Result<std::unique_ptr<Transport>> MakeTcpTransport(const TcpOptions& options);

}  // namespace mrtrain::runtime
