#pragma once

// The status server's request handling, free of sockets: bytes in, a request or a refusal out
// (ParseHttpRequest), a request in, a response out (HandleHttpRequest), a response to bytes
// (SerializeHttpResponse). The server (http_server.h) only moves bytes; tests and the fuzz
// target drive these functions directly.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mrtrain::runtime {

// What the status server shows: the master implements it (MasterService), tests fake it.
// Called on the server's thread; implementations must be thread-safe and must not block for
// long (they take the master's lock only to copy its state).
class StatusSource {
 public:
  virtual ~StatusSource() = default;
  // Workers and jobs (GET /api/status).
  virtual std::string StatusJson() const = 0;
  // One job's per-epoch figures (GET /api/jobs/N/history); nullopt for a job it does not know.
  virtual std::optional<std::string> HistoryJson(uint64_t job_id) const = 0;
  // Prometheus text exposition (GET /metrics).
  virtual std::string MetricsText() const = 0;
};

// Bounds on what a client may send: a request is its head only (GET and HEAD carry no body).
struct HttpLimits {
  size_t max_head_bytes = 8192;    // request line and headers; past it: 431
  size_t max_header_fields = 64;   // past it: 431
  size_t max_target_bytes = 1024;  // the request target; past it: 414
};

struct HttpRequest {
  std::string method;  // as sent, case-sensitive ("GET")
  std::string target;  // origin-form, "/api/status?x=1"
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;           // empty for HEAD
  size_t content_length = 0;  // of the body a GET gets (a HEAD is told it without the body)
};

// The outcome of parsing the bytes received so far.
struct ParsedHttpRequest {
  enum class State { kIncomplete, kComplete, kRefused };
  State state = State::kIncomplete;
  HttpRequest request;   // kComplete
  HttpResponse refusal;  // kRefused: 400, 413, 414 or 431, to send before closing
};

// Parses the head of one HTTP/1.x request from `bytes` (everything received on the
// connection so far; bytes after the head are ignored, since the server answers one request
// per connection). kIncomplete while the head may still be completed within the limits.
ParsedHttpRequest ParseHttpRequest(std::string_view bytes, const HttpLimits& limits);

// Routes a request: GET or HEAD of "/", "/api/status", "/api/jobs/N/history", "/metrics";
// 404 for other paths, 405 (Allow: GET, HEAD) for other methods. Never shows more than the
// source returns.
HttpResponse HandleHttpRequest(const HttpRequest& request, const StatusSource& source);

// The response as HTTP/1.1 bytes, with Content-Length, Connection: close and headers that keep
// a browser from sniffing types, caching, framing the page or loading anything from elsewhere.
std::string SerializeHttpResponse(const HttpResponse& response);

// A response with `status` and a one-line plain-text body, for refusals and errors.
HttpResponse PlainHttpResponse(int status, const std::string& text);

}  // namespace mrtrain::runtime
