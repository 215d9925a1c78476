#pragma once
// The three channel statistics calibration measures, and the projection name
// each one is stored under in a channel config ("model.layers.{i}.self_attn.<name>").
#include <string_view>

#include "core/shape.h"

namespace dso::calibration {

enum class Statistic {
  q,   // mean |q_c| of the query projection before RoPE, one row per query head
  k,   // mean |k_c| of the key projection before RoPE, one row per KV head
  qk,  // mean |q_c * k_c| after RoPE, k repeated to its group's query heads
};

inline constexpr Statistic all_statistics[] = {Statistic::q, Statistic::k, Statistic::qk};

constexpr std::string_view statistic_name(Statistic s) {
  return s == Statistic::q ? "q" : s == Statistic::k ? "k" : "qk";
}

constexpr std::string_view projection_name(Statistic s) {
  return s == Statistic::q ? "q_proj" : s == Statistic::k ? "k_proj" : "qk_proj";
}

// How many rows (heads) a statistic has per layer.
inline int heads_of(Statistic s, const AttentionShape& shape) {
  return s == Statistic::k ? shape.kv_heads : shape.q_heads;
}

// "q", "k" or "qk", as a user writes it on a command line.
inline Statistic parse_statistic(std::string_view name) {
  for (Statistic s : all_statistics)
    if (statistic_name(s) == name) return s;
  fail("unknown channel statistic '", name, "': expected q, k or qk");
}

}  // namespace dso::calibration
