#pragma once
// What the tool was built from, fixed when it was built: the version, the git
// commit and whether the tree had changes beside it, and the build type.
#include <optional>
#include <string_view>

namespace dso::cli {

struct BuildInfo {
  std::string_view version;     // "0.1.0"
  std::string_view git_commit;  // the full hash, or "unknown" outside a git checkout
  std::optional<bool> dirty;    // files differed from the commit; unknown outside a checkout
  std::string_view build_type;  // "Release", "Debug", ...
};

const BuildInfo& build_info();

}  // namespace dso::cli
