// The one error type of ditrun. Every failure caused by bad input (a file, a tensor, a job,
// a plan) is an Error whose message is one line naming the thing and what is wrong; the CLI
// prints it and exits with code 2. Programming errors use assertions, not Error.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace ditrun {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ditrun
