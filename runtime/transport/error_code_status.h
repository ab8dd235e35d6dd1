#pragma once

#include <string>

#include <boost/system/error_code.hpp>

#include "engine/base/status.h"

namespace mrtrain::runtime {

// The one place a boost::system::error_code becomes a Status (STYLE.md section 5):
//   success -> OK; operation_aborted -> kAborted (we cancelled it);
//   timed_out -> kDeadlineExceeded;
//   end of file, refused, reset, aborted, broken pipe, unreachable, not connected, name not
//   found, address in use, try again -> kUnavailable (the peer or address is gone for now);
//   anything else -> kIOError.
// The message is `context + ": " + ec.message()`, e.g. "connect to 10.0.0.7:7070: Connection
// refused".
Status ErrorCodeToStatus(const boost::system::error_code& ec, const std::string& context);

}  // namespace mrtrain::runtime
