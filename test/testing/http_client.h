#pragma once

// A blocking HTTP/1.1 client over a plain socket, for tests of the status server: whole
// requests, and the half requests and stalls of a hostile client.
#include <string>

namespace mrtrain::testing {

// One TCP connection to "IPV4:PORT"; reads time out after 10 s. Fails the test (REQUIRE) when
// it cannot connect.
class HttpClient {
 public:
  explicit HttpClient(const std::string& address);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void Send(const std::string& bytes);
  // Everything until the server closes the connection (or a read times out).
  std::string ReadAll();

 private:
  int fd_ = -1;
};

struct HttpReply {
  int status = 0;    // 0 when no status line came
  std::string head;  // status line and headers
  std::string body;
};

// Sends `method target` on a new connection and reads the reply.
HttpReply HttpFetch(const std::string& address, const std::string& target,
                    const std::string& method = "GET");

}  // namespace mrtrain::testing
