#include "cli/bench_options.h"

#include <limits>

#include <cctype>

#include "cli/count_option.h"
#include "core/device.h"
#include "core/error.h"
#include "offload/available_memory.h"
#include "offload/format_bytes.h"

namespace dso::cli {

void add_selection_options(CLI::App& sub, BenchOptions& o) {
  sub.add_option("--dtype", o.dtype, "f16 or bf16")->capture_default_str();
  auto* k = add_count(sub, "--k", o.k, "tokens selected per KV head (instead of --k-fraction)");
  sub.add_option("--k-fraction", o.k_fraction, "k as a fraction of the context")->capture_default_str()->excludes(k);
  add_count(sub, "--r", o.r, "label channels per KV head (default head_dim / 16)");
  add_count(sub, "--sink", o.sink, "first tokens always attended", std::int64_t(0))->capture_default_str();
  add_count(sub, "--recent", o.recent, "newest tokens always attended", std::int64_t(0))->capture_default_str();
  add_count(sub, "--seed", o.seed, "seed of the dummy weights and synthetic tensors", std::uint64_t(0))
      ->capture_default_str();
}

std::int64_t parse_token_count(const std::string& text, std::string_view option) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string tail = text.substr(digits);
  require(digits > 0 && (tail.empty() || tail == "K" || tail == "k" || tail == "M" || tail == "m"),
          option, option.empty() ? "" : " ", "'", text, "' is not a token count (e.g. 4096, 16K, 1M)");
  // Twelve digits are past any capacity already, and cannot overflow below.
  require(digits <= 12, "context ", text, " is past the largest capacity of ", std::numeric_limits<std::int32_t>::max(),
          " tokens per sequence");
  std::int64_t n = std::stoll(text.substr(0, digits));
  if (tail == "K" || tail == "k") n <<= 10;
  if (tail == "M" || tail == "m") n <<= 20;
  require(n >= 1, "context must be at least 1 token, got '", text, "'");
  return n;
}

CLI::Option* takes_token_count(CLI::Option* option) {
  // A refusal is CLI11's, which names the option itself: the parse stays one
  // that ends in a CLI::ParseError (what the command-line fuzzer checks).
  return option->transform(
      CLI::Validator(
          [](std::string& text) {
            try {
              text = std::to_string(parse_token_count(text, ""));
              return std::string();
            } catch (const Error& e) {
              return std::string(e.what());
            }
          },
          "TOKENS"),
      "token count");
}

void check_counts(const BenchOptions& o, std::int64_t context) {
  require(context >= 1, "--context must be at least 1, got ", context);
  require(o.batch >= 1, "--batch must be at least 1, got ", o.batch);
  require(o.steps >= 1, "--steps must be at least 1, got ", o.steps);
  require(o.warmup >= 0, "--warmup must not be negative, got ", o.warmup);
  // Token positions are 32-bit; steps are ints, so the sum cannot overflow.
  constexpr std::int64_t max_capacity = std::numeric_limits<std::int32_t>::max();
  require(context <= max_capacity - o.warmup - o.steps, "context ", context, " plus ", o.warmup, " warm-up and ",
          o.steps, " timed steps is past the largest capacity of ", max_capacity, " tokens per sequence");
}

void check_cache_could_fit(const EngineConfig& config) {
  EngineConfig cache_only = config;
  cache_only.policy = Policy::dense_gpu;
  cache_only.channels = {};
  const std::int64_t kv_bytes = Engine::plan(cache_only).kv_bytes;
  const HostRoom host = available_host_memory();
  const bool gpu = config.backend == Backend::cuda && gpu_available();
  const std::int64_t gpu_free = gpu ? available_gpu_bytes() : 0;
  require(kv_bytes <= host.bytes + gpu_free, "the K/V cache alone needs ", format_bytes(kv_bytes), ", more than ",
          gpu ? concat(format_bytes(gpu_free), " free on the GPU and ") : std::string(), describe(host));
}

}  // namespace dso::cli
