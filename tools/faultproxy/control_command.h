#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/base/status.h"
#include "tools/faultproxy/fault_proxy.h"

namespace mrtrain::tools {

// Builds a Mode from its command-line name and the number that goes with it:
//   pass | blackhole            (no number)
//   delay N                     N milliseconds per chunk
//   drop N                      reset after N more bytes (0 if absent)
//   duplicate [N] | reorder [N] only frame N (the pair starting at frame N); absent: all
// Errors: kInvalidArgument for an unknown name, a missing delay or a number a mode takes none of.
Result<Mode> ModeFromName(const std::string& name, std::optional<uint64_t> number);

// "both", "c2s" (client to server) or "s2c"; anything else is kInvalidArgument.
Result<Direction> DirectionFromName(const std::string& name);

// Carries out one line of the proxy's control channel (stdin of mrtrain-faultproxy):
//   mode NAME [N] [both|c2s|s2c]   SetMode(ModeFromName(NAME, N), direction; default both)
//   cut                            CutAll()
//   stats                          reports the counters
// Returns the reply to print ("ok mode delay 200 both", "stats accepted=1 ..."), or
// kInvalidArgument naming what is wrong with the line.
Result<std::string> ApplyControlLine(const std::string& line, FaultProxy* proxy);

// "accepted=1 c2s_bytes=120 s2c_bytes=120 duplicated=0 reordered=0".
std::string FormatCounters(const FaultProxy::Counters& counters);

}  // namespace mrtrain::tools
