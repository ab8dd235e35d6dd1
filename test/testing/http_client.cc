#include "test/testing/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace mrtrain::testing {

HttpClient::HttpClient(const std::string& address) {
  const size_t colon = address.rfind(':');
  REQUIRE(colon != std::string::npos);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  REQUIRE(inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) == 1);
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd_ >= 0);
  timeval tv{10, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
}

HttpClient::~HttpClient() { close(fd_); }

void HttpClient::Send(const std::string& bytes) {
  REQUIRE(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(bytes.size()));
}

std::string HttpClient::ReadAll() {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd_, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

HttpReply HttpFetch(const std::string& address, const std::string& target,
                    const std::string& method) {
  HttpClient client(address);
  client.Send(method + " " + target + " HTTP/1.1\r\nHost: " + address + "\r\n\r\n");
  const std::string raw = client.ReadAll();
  HttpReply reply;
  const size_t end = raw.find("\r\n\r\n");
  reply.head = raw.substr(0, end);
  if (end != std::string::npos) reply.body = raw.substr(end + 4);
  if (raw.rfind("HTTP/1.1 ", 0) == 0 && raw.size() >= 12)
    reply.status = std::stoi(raw.substr(9, 3));
  return reply;
}

}  // namespace mrtrain::testing
