#include "runtime/transport/error_code_status.h"

#include <boost/asio/error.hpp>
#include <catch2/catch.hpp>

namespace mrtrain::runtime {
namespace {

TEST_CASE("error codes map to the status a caller reacts to", "[runtime][transport]") {
  namespace error = boost::asio::error;
  CHECK(ErrorCodeToStatus({}, "x").ok());
  CHECK(ErrorCodeToStatus(error::operation_aborted, "x").code() == StatusCode::kAborted);
  CHECK(ErrorCodeToStatus(error::timed_out, "x").code() == StatusCode::kDeadlineExceeded);
  for (auto e : {error::connection_refused, error::connection_reset, error::broken_pipe,
                 error::host_unreachable, error::address_in_use}) {
    CHECK(ErrorCodeToStatus(e, "x").code() == StatusCode::kUnavailable);
  }
  CHECK(ErrorCodeToStatus(error::eof, "x").code() == StatusCode::kUnavailable);
  CHECK(ErrorCodeToStatus(error::host_not_found, "x").code() == StatusCode::kUnavailable);
  CHECK(ErrorCodeToStatus(error::access_denied, "x").code() == StatusCode::kIOError);
  Status s = ErrorCodeToStatus(error::connection_refused, "connect to 10.0.0.7:7070");
  CHECK_THAT(s.message(), Catch::StartsWith("connect to 10.0.0.7:7070: "));
}

}  // namespace
}  // namespace mrtrain::runtime
