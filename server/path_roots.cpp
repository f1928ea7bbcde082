#include "server/path_roots.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

#include "runtime/core/error.h"

namespace ditrun::server {
namespace {

namespace fs = std::filesystem;

// Control characters (a newline above all) would break the one-line error.
std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  return out;
}

// Component-wise, so "/data/cond-evil" is not inside "/data/cond"; both normalized already.
bool is_inside(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // the trailing "" of a root spelled with a final '/'
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

bool is_inside_any(const fs::path& path, const std::vector<std::string>& roots) {
  return std::any_of(roots.begin(), roots.end(),
                     [&](const std::string& root) { return is_inside(path, root); });
}

}  // namespace

PathRoots::PathRoots(std::vector<std::string> roots) {
  for (const std::string& root : roots) {
    std::error_code ec;
    const fs::path canonical = fs::canonical(root, ec);
    if (ec) fail("allowed root '{}' does not exist", printable(root));
    if (!fs::is_directory(canonical)) fail("allowed root '{}' is not a directory", printable(root));
    roots_.push_back(canonical.string());
    spelled_roots_.push_back(fs::absolute(root).lexically_normal().string());
  }
}

std::string PathRoots::resolve(std::string_view path) const {
  if (roots_.empty())
    fail("no server-side paths are allowed (start serve with --allow-root DIR)");
  const std::string shown = printable(path);
  if (path.empty()) fail("path '' is empty");
  if (path.find('\0') != std::string_view::npos) fail("path '{}' contains a NUL byte", shown);
  const auto outside = [&] {
    fail("path '{}' is outside the allowed roots ({})", shown, fmt::join(roots_, ", "));
  };

  const fs::path requested(path);
  const fs::path absolute =
      (requested.is_absolute() ? requested : fs::path(roots_.front()) / requested).lexically_normal();
  // Checked before the file system is asked, so the errors cannot tell a client whether
  // some file outside the roots exists.
  if (!is_inside_any(absolute, roots_) && !is_inside_any(absolute, spelled_roots_)) outside();

  std::error_code ec;
  const fs::path canonical = fs::canonical(absolute, ec);
  if (ec) fail("path '{}' does not exist", shown);
  // A symlink inside a root may point anywhere: only where it lands counts.
  if (!is_inside_any(canonical, roots_)) outside();
  return canonical.string();
}

}  // namespace ditrun::server
