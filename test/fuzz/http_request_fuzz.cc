// libFuzzer target for the status server's request handling (runtime/http/http_handler.cc):
// the bytes any client on the network controls.
//
// Input: one flags byte, then the bytes as they would arrive on a connection. Flags:
//   bits 0-1   how they arrive: 1, 7 or 64 bytes at a time, or all at once
//   bit 2      small limits (128-byte head, 4 header fields, 32-byte target) instead of the
//              server's defaults
//
// The target does what the server does: it appends each piece to what it received (never
// past the head limit), parses, and answers the first request it completes or refuses.
// Checks: fed in pieces or at once, the verdict and the request are the same; a refusal is
// 400, 413, 414 or 431; an answer is 200, 404 or 405, HEAD without a body, GET with a body as
// long as its Content-Length; the serialized response is one well-formed HTTP/1.1 response.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/base/check.h"
#include "runtime/http/http_handler.h"
#include "test/runtime/http/fake_status_source.h"

namespace {

using mrtrain::runtime::HttpLimits;
using mrtrain::runtime::HttpResponse;
using mrtrain::runtime::ParsedHttpRequest;
using State = ParsedHttpRequest::State;

// What the server would do with `stream` arriving `piece` bytes at a time (0: at once).
ParsedHttpRequest Receive(std::string_view stream, size_t piece, const HttpLimits& limits) {
  std::string received;
  if (piece == 0) piece = stream.size() + 1;
  size_t at = 0;
  ParsedHttpRequest parsed;
  while (at < stream.size()) {
    const size_t room = limits.max_head_bytes - received.size();
    const size_t n = std::min({piece, room, stream.size() - at});
    received.append(stream.substr(at, n));
    at += n;
    parsed = mrtrain::runtime::ParseHttpRequest(received, limits);
    if (parsed.state != State::kIncomplete) return parsed;
  }
  return parsed;
}

void CheckResponse(const HttpResponse& r, bool head) {
  const std::string bytes = mrtrain::runtime::SerializeHttpResponse(r);
  MRTRAIN_CHECK(bytes.rfind("HTTP/1.1 " + std::to_string(r.status) + " ", 0) == 0);
  const size_t end = bytes.find("\r\n\r\n");
  MRTRAIN_CHECK(end != std::string::npos);
  MRTRAIN_CHECK(bytes.find("Content-Length: " + std::to_string(r.content_length) + "\r\n") < end);
  MRTRAIN_CHECK(bytes.size() - end - 4 == (head ? 0 : r.content_length));
  MRTRAIN_CHECK(r.content_type.find_first_of("\r\n") == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  HttpLimits limits;
  if (flags & 4) {
    limits.max_head_bytes = 128;
    limits.max_header_fields = 4;
    limits.max_target_bytes = 32;
  }
  static constexpr size_t kPieces[] = {1, 7, 64, 0};
  const ParsedHttpRequest parsed = Receive(stream, kPieces[flags & 3], limits);
  const ParsedHttpRequest at_once = Receive(stream, 0, limits);
  MRTRAIN_CHECK(parsed.state == at_once.state);
  switch (parsed.state) {
    case State::kIncomplete:
      MRTRAIN_CHECK(stream.size() < limits.max_head_bytes);
      break;
    case State::kRefused: {
      const int s = parsed.refusal.status;
      MRTRAIN_CHECK(s == 400 || s == 413 || s == 414 || s == 431);
      MRTRAIN_CHECK(s == at_once.refusal.status);
      CheckResponse(parsed.refusal, false);
      break;
    }
    case State::kComplete: {
      MRTRAIN_CHECK(parsed.request.method == at_once.request.method);
      MRTRAIN_CHECK(parsed.request.target == at_once.request.target);
      MRTRAIN_CHECK(parsed.request.target.size() <= limits.max_target_bytes);
      MRTRAIN_CHECK(!parsed.request.target.empty() && parsed.request.target[0] == '/');
      mrtrain::runtime::FakeStatusSource source;
      const HttpResponse r = mrtrain::runtime::HandleHttpRequest(parsed.request, source);
      MRTRAIN_CHECK(r.status == 200 || r.status == 404 || r.status == 405);
      const bool head = parsed.request.method == "HEAD";
      MRTRAIN_CHECK(!head || r.body.empty());
      MRTRAIN_CHECK(head || r.body.size() == r.content_length);
      CheckResponse(r, head);
      break;
    }
  }
  return 0;
}
