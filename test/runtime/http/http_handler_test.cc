#include "runtime/http/http_handler.h"

#include <catch2/catch.hpp>

#include "test/runtime/http/fake_status_source.h"

namespace mrtrain::runtime {
namespace {

using State = ParsedHttpRequest::State;

HttpResponse Get(const std::string& target, const std::string& method = "GET") {
  FakeStatusSource source;
  return HandleHttpRequest(HttpRequest{method, target}, source);
}

TEST_CASE("routes: the page, the status, a job's history, the metrics") {
  HttpResponse page = Get("/");
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(page.body.find("<svg") == std::string::npos);  // drawn by the script, not served
  CHECK(page.body.find("fetch(url") != std::string::npos);
  CHECK(page.body.find("http://www.w3.org/2000/svg") != std::string::npos);
  // Nothing is loaded from elsewhere.
  CHECK(page.body.find("src=") == std::string::npos);
  CHECK(page.body.find("href=") == std::string::npos);

  HttpResponse status = Get("/api/status?pretty=1");
  CHECK(status.status == 200);
  CHECK(status.content_type == "application/json");
  CHECK(status.body == FakeStatusSource().StatusJson());

  HttpResponse history = Get("/api/jobs/7/history");
  CHECK(history.status == 200);
  CHECK(history.body == "{\"job\":7}");
  CHECK(Get("/api/jobs/8/history").status == 404);
  CHECK(Get("/api/jobs/8/history").body == "no job 8\n");

  HttpResponse metrics = Get("/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metrics.body == FakeStatusSource().MetricsText());
  CHECK(metrics.content_length == metrics.body.size());
}

TEST_CASE("unknown paths are 404, job ids that name no job too") {
  for (const char* target :
       {"/nope", "/api", "/api/status/", "/api/jobs//history", "/api/jobs/07/history",
        "/api/jobs/-1/history", "/api/jobs/1x/history", "/api/jobs/1/history/x",
        "/api/jobs/1234567890123456789/history", "/metrics/", "//", "/../etc/passwd"}) {
    INFO(target);
    CHECK(Get(target).status == 404);
  }
}

TEST_CASE("only GET and HEAD: everything else is 405 with Allow") {
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "get"}) {
    INFO(method);
    HttpResponse r = Get("/api/status", method);
    CHECK(r.status == 405);
    CHECK(SerializeHttpResponse(r).find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
  }
  HttpResponse head = Get("/metrics", "HEAD");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.content_length == FakeStatusSource().MetricsText().size());
  CHECK(SerializeHttpResponse(head).find("Content-Length: " + std::to_string(head.content_length) +
                                         "\r\n") != std::string::npos);
}

TEST_CASE("a response carries its length, closes, and forbids sniffing, caching and frames") {
  const std::string bytes = SerializeHttpResponse(Get("/api/status"));
  const std::string body = FakeStatusSource().StatusJson();
  CHECK(bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(bytes.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
  for (const char* header :
       {"Connection: close", "Cache-Control: no-store", "X-Content-Type-Options: nosniff",
        "X-Frame-Options: DENY", "Content-Security-Policy: default-src 'none'"}) {
    CHECK(bytes.find(std::string("\r\n") + header) != std::string::npos);
  }
  CHECK(bytes.substr(bytes.size() - body.size()) == body);
}

TEST_CASE("parsing: complete, incomplete, and what is refused") {
  HttpLimits limits;
  ParsedHttpRequest ok = ParseHttpRequest("GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n", limits);
  REQUIRE(ok.state == State::kComplete);
  CHECK(ok.request.method == "GET");
  CHECK(ok.request.target == "/api/status");
  CHECK(ParseHttpRequest("GET /api/status HTTP/1.0\r\n\r\n", limits).state == State::kComplete);
  // Bytes after the head (a pipelined request) are not this request's.
  CHECK(ParseHttpRequest("GET / HTTP/1.1\r\n\r\nGARBAGE", limits).state == State::kComplete);

  CHECK(ParseHttpRequest("", limits).state == State::kIncomplete);
  CHECK(ParseHttpRequest("GET /api/sta", limits).state == State::kIncomplete);
  CHECK(ParseHttpRequest("GET / HTTP/1.1\r\nHost: x\r\n", limits).state == State::kIncomplete);

  auto refused = [&](const std::string& bytes) {
    ParsedHttpRequest p = ParseHttpRequest(bytes, limits);
    return p.state == State::kRefused ? p.refusal.status : 0;
  };
  CHECK(refused("HELLO\r\n\r\n") == 400);
  CHECK(refused("GET / HTTP/9.9\r\n\r\n") == 400);
  CHECK(refused(std::string("GET /\0x HTTP/1.1\r\n\r\n", 20)) == 400);
  CHECK(refused("GET http://elsewhere/ HTTP/1.1\r\n\r\n") == 400);
  CHECK(refused("GET * HTTP/1.1\r\n\r\n") == 400);
  CHECK(refused("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello") == 413);
  CHECK(refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == 413);
  CHECK(refused("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n") == 400);
  CHECK(refused("GET /" + std::string(limits.max_target_bytes, 'a') + " HTTP/1.1\r\n\r\n") == 414);
}

TEST_CASE("limits: head bytes and header fields") {
  HttpLimits limits;
  limits.max_head_bytes = 256;
  limits.max_header_fields = 4;
  std::string fields;
  for (int i = 0; i < 4; ++i) fields += "X-" + std::to_string(i) + ": y\r\n";
  CHECK(ParseHttpRequest("GET / HTTP/1.1\r\n" + fields + "\r\n", limits).state == State::kComplete);
  ParsedHttpRequest many =
      ParseHttpRequest("GET / HTTP/1.1\r\n" + fields + "X-4: y\r\n\r\n", limits);
  REQUIRE(many.state == State::kRefused);
  CHECK(many.refusal.status == 431);
  CHECK(many.refusal.body == "more than 4 header fields\n");
  CHECK(SerializeHttpResponse(many.refusal).find("\r\nContent-Length: 26\r\n") !=
        std::string::npos);

  // A head that fills the limit without ending is refused, complete or not.
  const std::string long_field = "GET / HTTP/1.1\r\nX: " + std::string(300, 'a');
  ParsedHttpRequest partial = ParseHttpRequest(long_field.substr(0, 256), limits);
  REQUIRE(partial.state == State::kRefused);
  CHECK(partial.refusal.status == 431);
  CHECK(partial.refusal.body == "request head over 256 bytes\n");
  ParsedHttpRequest whole = ParseHttpRequest(long_field + "\r\n\r\n", limits);
  REQUIRE(whole.state == State::kRefused);
  CHECK(whole.refusal.status == 431);
}

}  // namespace
}  // namespace mrtrain::runtime
