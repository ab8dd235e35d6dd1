#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/status.h"

// Failpoints: named places in the code where a fault test can make this process crash, hang,
// sleep, drop a message or corrupt bytes, chosen by coordinates so a scenario replays exactly
// (STYLE.md section 8; after dmlc/rabit's allreduce_mock.h).
//
// The configuration is one string, from a `--failpoints` flag or MRTRAIN_FAILPOINTS:
//
//   spec   := entry (";" entry)*                  empty entries are skipped
//   entry  := NAME "=" ACTION ["(" ARG ")"] ["@" KEY "=" VALUE ("," KEY "=" VALUE)*]
//   NAME   := one of KnownFailpoints()
//   ACTION := crash [(exit code 1..255, default 86)]
//           | hang  [(milliseconds, default: until the process is killed)]
//           | delay (milliseconds)
//           | drop | corrupt
//   KEY    := worker (matched exactly) | epoch | round | partition | shard | attempt
//           | times (fire at most this many times; default unlimited)
//
// A coordinate the entry leaves out is a wildcard. Example:
//   map-after-compute=crash@worker=w2,epoch=1,partition=3,attempt=0;shuffle-mid-send=delay(200)
//
// The configuration is process-wide because the places that hit failpoints are deep inside
// workers and transports, which a test cannot reach to hand a configuration object.
namespace mrtrain::runtime::failpoint {

// Where a failpoint is being evaluated. -1 or an empty worker means the coordinate does not
// apply at this place; an entry that names such a coordinate does not match here.
struct Coordinates {
  std::string worker;
  int64_t epoch = -1, round = -1, partition = -1, shard = -1;
  int attempt = -1;
};

enum class Action { kNone, kCrash, kHang, kDelay, kDrop, kCorrupt };

// The failpoint names the code hits; Configure() rejects any other name, so a typo in a fault
// test fails loudly instead of never firing.
const std::vector<std::string>& KnownFailpoints();

// Replaces the process-wide configuration with `spec` (grammar above) and resets every fired
// count; "" clears it. Errors: kInvalidArgument naming the entry (1-based) and what was
// expected; the previous configuration then stays in force. Thread-safe.
Status Configure(const std::string& spec);

// Configure(value of MRTRAIN_FAILPOINTS) when the variable is set; otherwise changes nothing.
// Errors are those of Configure(), prefixed with the variable's name.
Status ConfigureFromEnv();

// Evaluates failpoint `name` at `at`. The first entry for `name` that matches `at` (every
// coordinate it names equals the given one) and has not used up its `times` fires:
//   crash:       logs an error naming the failpoint and coordinates, then std::_Exit(code),
//                skipping destructors and stdio flushes as a real crash would;
//   hang, delay: logs a warning, sleeps here, then returns kHang or kDelay;
//   drop, corrupt: logs a warning and returns kDrop or kCorrupt for the caller to apply.
// Returns kNone when nothing fires. Thread-safe; one relaxed atomic load when unconfigured.
Action Hit(std::string_view name, const Coordinates& at);

// What a caller does on kCorrupt: flips the middle byte of `bytes` (XOR 0x5A), so the damage
// is the same on every run. No-op on an empty string.
void CorruptByte(std::string* bytes);

// How many times entries for `name` have fired since the last Configure(). For tests.
int64_t FiredCount(std::string_view name);

}  // namespace mrtrain::runtime::failpoint
