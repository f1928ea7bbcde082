#include "test_paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

namespace ditrun::test {

// The environment can point elsewhere: scripts/gpu_check.sh runs the tests on a machine where
// neither the build tree nor ../shared exists, from a bundle that carries both.
std::string testdata(const std::string& relative) {
  const char* dir = std::getenv("DITRUN_TESTDATA_DIR");
  return std::string(dir && *dir ? dir : DITRUN_TESTDATA_DIR) + "/" + relative;
}
std::string project_testdata(const std::string& relative) {
  const char* dir = std::getenv("DITRUN_PROJECT_TESTDATA_DIR");
  return std::string(dir && *dir ? dir : DITRUN_PROJECT_TESTDATA_DIR) + "/" + relative;
}
std::string ditrun_binary() {
  const char* binary = std::getenv("DITRUN_BINARY");
  return binary && *binary ? binary : DITRUN_BINARY;
}

namespace {
std::vector<std::filesystem::path>& made_dirs() {
  static std::vector<std::filesystem::path> dirs;
  return dirs;
}
void remove_made_dirs() {
  std::error_code ec;
  for (const auto& d : made_dirs()) std::filesystem::remove_all(d, ec);
}
}  // namespace

std::string temp_dir(const std::string& tag) {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(remove_made_dirs); });
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ditrun-test-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  made_dirs().push_back(dir);
  return dir.string();
}

}  // namespace ditrun::test
