#include "runtime/http/http_server.h"

#include <chrono>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "test/runtime/http/fake_status_source.h"
#include "test/testing/http_client.h"

namespace mrtrain::runtime {
namespace {

using Clock = std::chrono::steady_clock;

using testing::HttpClient;

std::string Fetch(const std::string& address, const std::string& request) {
  HttpClient c(address);
  c.Send(request);
  return c.ReadAll();
}

struct Served {
  explicit Served(HttpServerOptions options = {}) : server(&source, Options(options)) {
    auto bound = server.Start();
    INFO(bound.status().ToString());
    REQUIRE(bound.ok());
    address = *bound;
  }
  static HttpServerOptions Options(HttpServerOptions o) {
    if (o.listen.empty()) o.listen = "127.0.0.1:0";
    return o;
  }
  FakeStatusSource source;
  HttpServer server;
  std::string address;
};

TEST_CASE("serves a request over TCP and closes") {
  Served s;
  const std::string reply = Fetch(s.address, "GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reply.substr(reply.find("\r\n\r\n") + 4) == s.source.StatusJson());
  CHECK(Fetch(s.address, "DELETE /api/status HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0) == 0);
  CHECK(Fetch(s.address, "BLAH\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
}

TEST_CASE("a bare port binds loopback") {
  HttpServerOptions options;
  options.listen = "0";
  Served s(options);
  CHECK(s.address.rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE("a client that sends half a request and stalls delays no other client") {
  HttpServerOptions options;
  options.deadline = std::chrono::milliseconds(20000);
  Served s(options);
  HttpClient stalled(s.address);
  stalled.Send("GET /api/sta");
  HttpClient slow_reader(s.address);  // asks for the page and never reads it
  slow_reader.Send("GET / HTTP/1.1\r\n\r\n");
  const auto start = Clock::now();
  const std::string reply = Fetch(s.address, "GET /api/status HTTP/1.1\r\n\r\n");
  CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(Clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("a connection is closed at its deadline") {
  HttpServerOptions options;
  options.deadline = std::chrono::milliseconds(300);
  Served s(options);
  HttpClient stalled(s.address);
  stalled.Send("GET /api/status HTTP/1.1\r\nHost:");
  const auto start = Clock::now();
  CHECK(stalled.ReadAll().empty());
  CHECK(Clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("connections past the bound are closed at once; slots free at their deadline") {
  HttpServerOptions options;
  options.max_connections = 2;
  options.deadline = std::chrono::milliseconds(500);
  Served s(options);
  HttpClient a(s.address), b(s.address);
  a.Send("G");
  b.Send("G");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both accepted
  CHECK(Fetch(s.address, "GET /api/status HTTP/1.1\r\n\r\n").empty());
  CHECK(a.ReadAll().empty());  // closed at the deadline
  CHECK(b.ReadAll().empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(Fetch(s.address, "GET /api/status HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("a head past the limit, sent in pieces, is refused with 431") {
  HttpServerOptions options;
  options.limits.max_head_bytes = 1024;
  Served s(options);
  HttpClient c(s.address);
  c.Send("GET / HTTP/1.1\r\n");
  for (int i = 0; i < 40; ++i) c.Send("X-Filler: " + std::string(30, 'a') + "\r\n");
  // The server has refused by now; a client still sending its head must neither be reset
  // (its send fails) nor lose the answer: the server drains what follows its answer.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  c.Send("X-Late: " + std::string(30, 'b') + "\r\n");
  CHECK(c.ReadAll().rfind("HTTP/1.1 431", 0) == 0);
}

TEST_CASE("listen addresses") {
  auto parsed = [](const std::string& listen) {
    auto r = ParseHttpListen(listen);
    return r.ok() ? r->first + " " + std::to_string(r->second) : r.status().message();
  };
  CHECK(parsed("8080") == "127.0.0.1 8080");
  CHECK(parsed("0") == "127.0.0.1 0");
  CHECK(parsed("0.0.0.0:80") == "0.0.0.0 80");
  CHECK(parsed("localhost:0") == "127.0.0.1 0");
  CHECK(parsed("[::1]:9") == "::1 9");
  CHECK(parsed("x.example:80") ==
        "--http-listen x.example:80: 'x.example' is not an IP address (expected PORT, "
        "HOST:PORT or [IPV6]:PORT)");
  CHECK(parsed("1.2.3.4:65536") ==
        "--http-listen 1.2.3.4:65536: the port must be a number from 0 to 65535 (expected "
        "PORT, HOST:PORT or [IPV6]:PORT)");
  CHECK(!ParseHttpListen("").ok());
  CHECK(!ParseHttpListen("1.2.3.4:").ok());
  CHECK(!ParseHttpListen("-1").ok());
}

TEST_CASE("an address already in use is kUnavailable") {
  Served first;
  HttpServerOptions options;
  options.listen = first.address;
  FakeStatusSource source;
  HttpServer second(&source, options);
  auto bound = second.Start();
  REQUIRE(!bound.ok());
  CHECK(bound.status().code() == StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mrtrain::runtime
