// Where tests find the shared reference data and the built binary.
#pragma once

#include <string>

namespace ditrun::test {

std::string testdata(const std::string& relative);  // ../shared/testdata/<relative>
std::string ditrun_binary();
// A fresh empty directory under the system temp dir, removed at process exit.
std::string temp_dir(const std::string& tag);

}  // namespace ditrun::test
