// Server-side paths a client may name: only files under one of the allowed roots, after
// resolving ".." and symlinks, so a request cannot read /etc/passwd or ../../secret.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ditrun::server {

class PathRoots {
 public:
  // Each root must exist and be a directory (ditrun::Error naming it otherwise); stored
  // canonical. No roots at all is allowed: then every resolve() refuses.
  explicit PathRoots(std::vector<std::string> roots = {});

  bool empty() const { return roots_.empty(); }

  // A path relative to the first root, or absolute; returns the canonical path inside a
  // root, or throws ditrun::Error with a one-line reason ("path 'x' is outside the allowed
  // roots (/data/cond)", "path 'x' does not exist", "no server-side paths are allowed
  // (start serve with --allow-root DIR)").
  std::string resolve(std::string_view path) const;

  // The canonical roots, in the order given.
  const std::vector<std::string>& roots() const { return roots_; }

 private:
  std::vector<std::string> roots_;
  // The roots as given, made absolute but with symlinks kept: a path written through a
  // symlinked spelling of a root passes the first, lexical check.
  std::vector<std::string> spelled_roots_;
};

}  // namespace ditrun::server
