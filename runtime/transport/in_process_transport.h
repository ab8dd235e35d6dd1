#pragma once

#include <memory>

#include "runtime/transport/transport.h"

namespace mrtrain::runtime {

struct InProcessOptions {
  TransportLimits limits;
  // Also run every message through EncodeFrame and a FrameDecoder (header, CRC32C), as TCP does.
  // Off by default: payloads are already the exact bytes TCP would carry (the same message
  // encoding), and checksumming them twice in one process only costs time.
  bool check_frames = false;
};

// The transport of local mode: every role of a job in one process. Addresses are
// "inproc://name"; Listen("inproc://") picks a fresh name. All endpoints live in this one
// Transport object, so master and workers must share it.
//
// One dispatcher thread (the transport thread) runs every callback. Messages are delivered in a
// single FIFO over all connections, so the order of deliveries depends only on the order of
// Send() calls: a run whose sends are ordered is reproducible, under a debugger too. There is
// no handshake (the process trusts itself); Close() delivers the frames already sent first.
std::unique_ptr<Transport> MakeInProcessTransport(const InProcessOptions& options = {});

}  // namespace mrtrain::runtime
