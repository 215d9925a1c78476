#pragma once
// The attention shapes benchmarks are run on, by name (docs/architecture.md, the benchmark protocol), or
// spelled out as "L4-Hq8-Hkv2-d64".
#include <string>
#include <string_view>

#include "core/shape.h"

namespace dso::cli {

struct NamedShape {
  std::string name;
  AttentionShape shape;
};

// Throws dso::Error listing the known names where `text` is neither.
NamedShape parse_shape(std::string_view text);

}  // namespace dso::cli
