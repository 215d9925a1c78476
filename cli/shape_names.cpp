#include "cli/shape_names.h"

#include <array>
#include <cstdio>

#include "core/error.h"

namespace dso::cli {

namespace {

const std::array<NamedShape, 4> known{{
    {"small", {4, 8, 2, 64}},  // seconds on one core: the cpu backend's default
    {"llama-2-7b", {32, 32, 32, 128}},
    {"llama-3-8b", {32, 32, 8, 128}},
    {"smollm2-135m", {30, 9, 3, 64}},
}};

}  // namespace

NamedShape parse_shape(std::string_view text) {
  for (const NamedShape& s : known)
    if (s.name == text) return s;
  AttentionShape shape;
  char tail = 0;
  const std::string spelled(text);
  if (std::sscanf(spelled.c_str(), "L%d-Hq%d-Hkv%d-d%d%c", &shape.layers, &shape.q_heads, &shape.kv_heads,
                  &shape.head_dim, &tail) == 4) {
    shape.validate();
    return {spelled, shape};
  }
  std::string names;
  for (const NamedShape& s : known) names += s.name + ", ";
  fail("unknown shape '", text, "' (choose from ", names, "or spell one out as L4-Hq8-Hkv2-d64)");
}

}  // namespace dso::cli
