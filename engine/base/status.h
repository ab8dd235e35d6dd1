#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace mrtrain {

// The few error codes the engine uses. Messages carry the detail (file and line, spec key,
// partition, worker, attempt); codes only say how a caller should react.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad spec, flag or input the user can fix
  kNotFound,            // a file, key or name that does not exist
  kCorruption,          // bytes that fail a checksum, magic or grammar
  kIOError,             // the OS refused a read or write
  kUnavailable,         // a peer or resource is gone for now; retrying may help
  kDeadlineExceeded,    // a bounded wait ran out
  kAborted,             // the attempt was superseded
  kFailedPrecondition,  // the system is not in the state the call needs
  kPluginError,         // user plugin code failed
  kInternal,            // a bug, reported rather than crashing
};

const char* StatusCodeName(StatusCode code);

// Status is the result of an operation that can fail for reasons outside the program.
// Cheap to copy when ok (no allocation). Thread-compatible.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: job.yaml:3: ..." or "OK".
  std::string ToString() const;

  // Returns a status with the same code and `context + ": " + message`.
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFoundError(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status CorruptionError(std::string m) {
  return Status(StatusCode::kCorruption, std::move(m));
}
inline Status IOError(std::string m) { return Status(StatusCode::kIOError, std::move(m)); }
inline Status FailedPreconditionError(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status UnavailableError(std::string m) {
  return Status(StatusCode::kUnavailable, std::move(m));
}
inline Status DeadlineExceededError(std::string m) {
  return Status(StatusCode::kDeadlineExceeded, std::move(m));
}
inline Status AbortedError(std::string m) { return Status(StatusCode::kAborted, std::move(m)); }
inline Status PluginError(std::string m) { return Status(StatusCode::kPluginError, std::move(m)); }
inline Status InternalError(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

// Result<T> holds either a value or a non-ok Status (absl::StatusOr semantics).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result built from an ok Status has no value");
    if (status_.ok()) status_ = InternalError("Result built from an ok Status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace mrtrain

#define MRTRAIN_STATUS_CONCAT_INNER(a, b) a##b
#define MRTRAIN_STATUS_CONCAT(a, b) MRTRAIN_STATUS_CONCAT_INNER(a, b)

#define MRTRAIN_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::mrtrain::Status mrtrain_status_ = (expr);        \
    if (!mrtrain_status_.ok()) return mrtrain_status_; \
  } while (0)

#define MRTRAIN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

// MRTRAIN_ASSIGN_OR_RETURN(auto x, ComputeX()); declares or assigns x, or returns the error.
#define MRTRAIN_ASSIGN_OR_RETURN(lhs, expr) \
  MRTRAIN_ASSIGN_OR_RETURN_IMPL(MRTRAIN_STATUS_CONCAT(mrtrain_result_, __LINE__), lhs, expr)
