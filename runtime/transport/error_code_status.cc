#include "runtime/transport/error_code_status.h"

#include <boost/asio/error.hpp>

namespace mrtrain::runtime {

Status ErrorCodeToStatus(const boost::system::error_code& ec, const std::string& context) {
  namespace error = boost::asio::error;
  if (!ec) return Status::Ok();
  std::string message = context + ": " + ec.message();
  if (ec == error::operation_aborted) return Status(StatusCode::kAborted, message);
  if (ec == error::timed_out) return Status(StatusCode::kDeadlineExceeded, message);
  if (ec == error::eof || ec == error::connection_refused || ec == error::connection_reset ||
      ec == error::connection_aborted || ec == error::broken_pipe ||
      ec == error::host_unreachable || ec == error::network_unreachable ||
      ec == error::network_down || ec == error::network_reset || ec == error::not_connected ||
      ec == error::shut_down || ec == error::host_not_found ||
      ec == error::host_not_found_try_again || ec == error::address_in_use ||
      ec == error::try_again) {
    return Status(StatusCode::kUnavailable, message);
  }
  return Status(StatusCode::kIOError, message);
}

}  // namespace mrtrain::runtime
