#include "runtime/http/http_handler.h"

#include <iterator>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "runtime/http/status_page.h"

namespace mrtrain::runtime {
namespace {

namespace http = boost::beast::http;

constexpr char kJson[] = "application/json";
constexpr char kPlain[] = "text/plain; charset=utf-8";
constexpr char kPrometheus[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kHtml[] = "text/html; charset=utf-8";

ParsedHttpRequest Refuse(int status, const std::string& why) {
  ParsedHttpRequest parsed;
  parsed.state = ParsedHttpRequest::State::kRefused;
  parsed.refusal = PlainHttpResponse(status, why);
  return parsed;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

HttpResponse Ok(const char* content_type, std::string body) {
  HttpResponse r;
  r.content_type = content_type;
  r.body = std::move(body);
  return r;
}

// "/api/jobs/12/history" -> 12; nullopt for anything else (leading zeros, signs and numbers
// past 18 digits included: they name no job).
std::optional<uint64_t> HistoryJobId(std::string_view path) {
  constexpr std::string_view kPrefix = "/api/jobs/";
  constexpr std::string_view kSuffix = "/history";
  if (path.size() <= kPrefix.size() + kSuffix.size() || path.substr(0, kPrefix.size()) != kPrefix ||
      path.substr(path.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  const std::string_view digits =
      path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
  if (digits.size() > 18 || digits[0] == '0') return std::nullopt;
  uint64_t id = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + static_cast<uint64_t>(c - '0');
  }
  return id;
}

}  // namespace

HttpResponse PlainHttpResponse(int status, const std::string& text) {
  HttpResponse r;
  r.status = status;
  r.content_type = kPlain;
  r.body = text + "\n";
  r.content_length = r.body.size();
  return r;
}

ParsedHttpRequest ParseHttpRequest(std::string_view bytes, const HttpLimits& limits) {
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_head_bytes));
  parser.eager(false);  // the head only: a body is refused below, never read
  boost::beast::error_code ec;
  parser.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  if (ec == http::error::need_more) {
    if (bytes.size() >= limits.max_head_bytes) {
      return Refuse(431, "request head over " + std::to_string(limits.max_head_bytes) + " bytes");
    }
    return {};
  }
  if (ec == http::error::header_limit) {
    return Refuse(431, "request head over " + std::to_string(limits.max_head_bytes) + " bytes");
  }
  if (ec || !parser.is_header_done()) return Refuse(400, "malformed request: " + ec.message());
  const auto& message = parser.get();
  const size_t fields = static_cast<size_t>(std::distance(message.begin(), message.end()));
  if (fields > limits.max_header_fields) {
    return Refuse(431, "more than " + std::to_string(limits.max_header_fields) + " header fields");
  }
  if (parser.chunked() || parser.content_length().value_or(0) > 0) {
    return Refuse(413, "this server reads no request body");
  }
  const std::string_view target(message.target().data(), message.target().size());
  if (target.size() > limits.max_target_bytes) {
    return Refuse(414, "request target over " + std::to_string(limits.max_target_bytes) + " bytes");
  }
  if (target.empty() || target[0] != '/') return Refuse(400, "request target must start with /");
  ParsedHttpRequest parsed;
  parsed.state = ParsedHttpRequest::State::kComplete;
  parsed.request.method = std::string(message.method_string());
  parsed.request.target = std::string(target);
  return parsed;
}

HttpResponse HandleHttpRequest(const HttpRequest& request, const StatusSource& source) {
  const bool head = request.method == "HEAD";
  HttpResponse r;
  if (request.method != "GET" && !head) {
    r = PlainHttpResponse(405, "read-only: only GET and HEAD are served");
  } else {
    const std::string_view target = request.target;
    const std::string_view path = target.substr(0, target.find('?'));
    if (path == "/" || path == "/index.html") {
      r = Ok(kHtml, std::string(StatusPageHtml()));
    } else if (path == "/api/status") {
      r = Ok(kJson, source.StatusJson());
    } else if (path == "/metrics") {
      r = Ok(kPrometheus, source.MetricsText());
    } else if (auto job = HistoryJobId(path)) {
      std::optional<std::string> history = source.HistoryJson(*job);
      r = history ? Ok(kJson, std::move(*history))
                  : PlainHttpResponse(404, "no job " + std::to_string(*job));
    } else {
      r = PlainHttpResponse(404, "not found; try /, /api/status, /api/jobs/N/history, /metrics");
    }
  }
  r.content_length = r.body.size();
  if (head) r.body.clear();
  return r;
}

std::string SerializeHttpResponse(const HttpResponse& response) {
  std::string out =
      "HTTP/1.1 " + std::to_string(response.status) + " " + Reason(response.status) + "\r\n";
  out += "Content-Type: " + response.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(response.content_length) + "\r\n";
  if (response.status == 405) out += "Allow: GET, HEAD\r\n";
  out +=
      "Connection: close\r\n"
      "Cache-Control: no-store\r\n"
      "X-Content-Type-Options: nosniff\r\n"
      "X-Frame-Options: DENY\r\n"
      // The page's own inline script and style, its API on the same origin, nothing else.
      "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
      "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:\r\n"
      "\r\n";
  out += response.body;
  return out;
}

}  // namespace mrtrain::runtime
