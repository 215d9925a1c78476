#pragma once
// Checks of what a caller hands the engine, shared by every backend: the
// configuration once at creation, the arguments of each call before any state
// changes.
#include <cstdint>
#include <span>

#include "offload/engine.h"

namespace dso {

// Throws dso::Error naming the first thing wrong with the configuration.
void validate_config(const EngineConfig& config);

struct DecodeArgs {
  const void* q;
  const void* k_new;
  const void* v_new;
  const void* q_next;
  void* out;
};

// lengths: tokens cached per sequence at `layer`, before the step's token.
void check_decode_call(const EngineConfig& config, int layer, const DecodeArgs& args,
                       std::span<const std::int64_t> lengths);

}  // namespace dso
