#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "engine/base/status.h"
#include "runtime/http/http_handler.h"

namespace mrtrain::runtime {

struct HttpServerOptions {
  // "HOST:PORT", "[V6]:PORT" or a bare "PORT" (bound to 127.0.0.1); port 0 picks a free one.
  std::string listen;
  HttpLimits limits;
  // A connection has this long from its accept to the last byte of its response; then it is
  // closed, whatever it was doing (a client that sends half a request and stalls holds a slot
  // this long, and nothing else).
  std::chrono::milliseconds deadline{5000};
  // Connections open at once; one accepted past it is closed at once.
  int max_connections = 64;
};

// The master's read-only status server: GET and HEAD of the page, the JSON API and /metrics
// (http_handler.h), one request per connection. Runs on a thread of its own: a slow or
// hostile client only ever holds a connection slot, never the master's threads, which it
// reaches only through `source` (StatusSource copies state under the master's lock).
// Start and Stop are not thread-safe against each other; the destructor stops.
class HttpServer {
 public:
  // `source` must outlive the server.
  HttpServer(const StatusSource* source, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving. Returns the bound "HOST:PORT"; kInvalidArgument for a listen
  // address it cannot read, kUnavailable when the address cannot be bound.
  Result<std::string> Start();
  // Closes the listener and every connection and joins the thread. Idempotent.
  void Stop();

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// "8080" -> {"127.0.0.1", 8080}; "0.0.0.0:80", "[::1]:0", "localhost:0" as given (localhost is
// 127.0.0.1). kInvalidArgument naming the flag's value for anything else.
Result<std::pair<std::string, uint16_t>> ParseHttpListen(const std::string& listen);

}  // namespace mrtrain::runtime
