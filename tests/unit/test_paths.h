// Where tests find the shared reference data and the built binary.
#pragma once

#include <string>

namespace ditrun::test {

std::string testdata(const std::string& relative);  // ../shared/testdata/<relative>
// tests/data/<relative>: cases this project made from official code (each folder's README says how).
std::string project_testdata(const std::string& relative);
std::string ditrun_binary();
// A fresh empty directory under the system temp dir, removed at process exit.
std::string temp_dir(const std::string& tag);

}  // namespace ditrun::test
