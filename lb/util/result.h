#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace weir::util {

// An OS error: the errno value and what was being attempted ("bind 127.0.0.1:80").
struct SysError {
  int code = 0;
  std::string context;

  std::string message() const { return context + ": " + std::strerror(code); }
};

// Result<T>: a value or a SysError. Functions that touch the OS return this instead of throwing,
// so the data path stays exception-free. Mark callers [[nodiscard]] through the type itself.
template <typename T>
class [[nodiscard]] Result {
public:
  Result(T value) : v_(std::move(value)) {}
  Result(SysError err) : v_(std::move(err)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const SysError& error() const { return std::get<1>(v_); }

private:
  std::variant<T, SysError> v_;
};

struct Ok {};

// Builds a SysError from the current errno.
inline SysError lastError(std::string context) { return SysError{errno, std::move(context)}; }

}  // namespace weir::util
