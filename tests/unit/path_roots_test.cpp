// Server-side paths: inside a root after "..", symlinks and look-alike prefixes are
// resolved, and the one-line refusals otherwise.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/core/error.h"
#include "server/path_roots.h"
#include "test_paths.h"

namespace ditrun::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// base/cond/{a.bin, sub/b.bin, escape -> ../secret.txt, inner -> sub/b.bin},
// base/cond-evil/x.bin, base/secret.txt, base/alias -> cond, base/other/c.bin.
class PathRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::canonical(test::temp_dir("path_roots")).string();
    fs::create_directories(base_ + "/cond/sub");
    fs::create_directories(base_ + "/cond-evil");
    fs::create_directories(base_ + "/other");
    for (const char* file : {"/cond/a.bin", "/cond/sub/b.bin", "/cond-evil/x.bin", "/secret.txt",
                             "/other/c.bin"})
      std::ofstream(base_ + file) << "data";
    fs::create_symlink("../secret.txt", base_ + "/cond/escape");
    fs::create_symlink("sub/b.bin", base_ + "/cond/inner");
    fs::create_directory_symlink("cond", base_ + "/alias");
  }

  std::string error_of(const PathRoots& roots, std::string_view path) {
    try {
      const std::string resolved = roots.resolve(path);
      ADD_FAILURE() << "'" << path << "' resolved to " << resolved;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      return e.what();
    }
    return "";
  }

  std::string base_;
};

TEST_F(PathRootsTest, ResolvesRelativeAndAbsolutePathsInsideARoot) {
  const PathRoots roots({base_ + "/cond", base_ + "/other"});
  EXPECT_EQ(roots.resolve("a.bin"), base_ + "/cond/a.bin");  // relative: to the first root
  EXPECT_EQ(roots.resolve("sub/../a.bin"), base_ + "/cond/a.bin");
  EXPECT_EQ(roots.resolve("./sub/b.bin"), base_ + "/cond/sub/b.bin");
  EXPECT_EQ(roots.resolve(base_ + "/cond/sub/b.bin"), base_ + "/cond/sub/b.bin");
  EXPECT_EQ(roots.resolve(base_ + "/other/c.bin"), base_ + "/other/c.bin");
  EXPECT_EQ(roots.resolve("inner"), base_ + "/cond/sub/b.bin");  // a symlink staying inside
  // Through a symlinked spelling of a root that was not given: refused before any lookup.
  EXPECT_THROW(roots.resolve(base_ + "/alias/a.bin"), Error);
}

TEST_F(PathRootsTest, StoresTheRootsCanonical) {
  const PathRoots roots({base_ + "/alias/", base_ + "/cond/../other"});
  EXPECT_EQ(roots.roots(), (std::vector<std::string>{base_ + "/cond", base_ + "/other"}));
  EXPECT_FALSE(roots.empty());
  EXPECT_EQ(roots.resolve(base_ + "/alias/sub/b.bin"), base_ + "/cond/sub/b.bin");
}

TEST_F(PathRootsTest, RefusesPathsOutsideTheRoots) {
  const PathRoots roots({base_ + "/cond"});
  const std::string outside = "is outside the allowed roots (" + base_ + "/cond)";
  EXPECT_EQ(error_of(roots, "/etc/passwd"), "path '/etc/passwd' " + outside);
  EXPECT_EQ(error_of(roots, "../secret.txt"), "path '../secret.txt' " + outside);
  EXPECT_THAT(error_of(roots, "sub/../../secret.txt"), HasSubstr(outside));
  EXPECT_THAT(error_of(roots, "../../../../../../etc/passwd"), HasSubstr(outside));
  EXPECT_THAT(error_of(roots, base_ + "/cond/../secret.txt"), HasSubstr(outside));
  // A look-alike prefix is not inside.
  EXPECT_THAT(error_of(roots, base_ + "/cond-evil/x.bin"), HasSubstr(outside));
  EXPECT_THAT(error_of(roots, "../cond-evil/x.bin"), HasSubstr(outside));
  // A symlink inside the root that points outside counts where it lands.
  EXPECT_THAT(error_of(roots, "escape"), HasSubstr(outside));
  EXPECT_THAT(error_of(roots, base_ + "/cond/escape"), HasSubstr(outside));
  // Nothing outside is looked at: a missing file there reads the same as an existing one.
  EXPECT_THAT(error_of(roots, "/no/such/file"), HasSubstr(outside));
}

TEST_F(PathRootsTest, RefusesMissingEmptyAndNulPaths) {
  const PathRoots roots({base_ + "/cond"});
  EXPECT_EQ(error_of(roots, "missing.bin"), "path 'missing.bin' does not exist");
  EXPECT_EQ(error_of(roots, ""), "path '' is empty");
  EXPECT_EQ(error_of(roots, std::string_view("a.bin\0../../secret.txt", 22)),
            "path 'a.bin?../../secret.txt' contains a NUL byte");
  EXPECT_EQ(error_of(roots, "line\nbreak"), "path 'line?break' does not exist");
}

TEST_F(PathRootsTest, RefusesEverythingWithoutRoots) {
  const PathRoots roots(std::vector<std::string>{});
  EXPECT_TRUE(roots.empty());
  EXPECT_EQ(error_of(roots, base_ + "/cond/a.bin"),
            "no server-side paths are allowed (start serve with --allow-root DIR)");
}

TEST_F(PathRootsTest, RefusesRootsThatAreNotDirectories) {
  try {
    PathRoots({base_ + "/nope"});
    FAIL() << "a missing root was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "allowed root '" + base_ + "/nope' does not exist");
  }
  try {
    PathRoots({base_ + "/cond/a.bin"});
    FAIL() << "a file root was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "allowed root '" + base_ + "/cond/a.bin' is not a directory");
  }
}

TEST_F(PathRootsTest, AllowsTheWholeFileSystemUnderRootSlash) {
  const PathRoots roots({"/"});
  EXPECT_EQ(roots.resolve(base_ + "/secret.txt"), base_ + "/secret.txt");
}

}  // namespace
}  // namespace ditrun::server
