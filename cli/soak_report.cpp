#include "cli/soak_report.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/output_file.h"
#include "offload/format_bytes.h"

namespace dso::cli {

SoakVerdict judge_soak(const std::vector<SoakSample>& samples) {
  require(samples.size() >= 2, "a soak verdict needs two samples, got ", samples.size());
  const SoakSample& first = samples.front();
  SoakVerdict v;
  v.rss_allowed_bytes =
      std::max(kRssGrowthFloorBytes, std::int64_t(kRssGrowthFraction * double(first.rss_bytes)));
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const SoakSample& s = samples[i];
    v.rss_growth_bytes = std::max(v.rss_growth_bytes, s.rss_bytes - first.rss_bytes);
    if (first.gpu_mem_bytes && s.gpu_mem_bytes)
      v.gpu_growth_bytes = std::max(v.gpu_growth_bytes.value_or(0), *s.gpu_mem_bytes - *first.gpu_mem_bytes);
  }
  v.memory_flat = v.rss_growth_bytes <= v.rss_allowed_bytes && v.gpu_growth_bytes.value_or(0) <= 0;
  for (const SoakSample& s : samples) {
    v.outputs_finite = v.outputs_finite && s.finite();
    v.tokens_in_vocab = v.tokens_in_vocab && s.tokens_in_vocab();
  }
  return v;
}

nlohmann::ordered_json sample_json(const SoakSample& s) {
  nlohmann::ordered_json j;
  j["record"] = "sample";
  j["step"] = s.step;
  j["date"] = s.date;
  j["ms_median"] = s.ms_median;
  j["ms_max"] = s.ms_max;
  j["gpu_mem_bytes"] = s.gpu_mem_bytes ? nlohmann::ordered_json(*s.gpu_mem_bytes) : nlohmann::ordered_json(nullptr);
  j["rss_bytes"] = s.rss_bytes;
  j["peak_rss_bytes"] = s.peak_rss_bytes;
  j["cache_tokens"] = s.cache_tokens;
  j["finite"] = s.finite();
  j["nonfinite_logits"] = s.nonfinite_logits;
  j["tokens_in_vocab"] = s.tokens_in_vocab();
  j["tokens_outside_vocab"] = s.tokens_outside_vocab;
  return j;
}

nlohmann::ordered_json verdict_json(const SoakVerdict& v, std::int64_t samples) {
  nlohmann::ordered_json j;
  j["record"] = "verdict";
  j["pass"] = v.pass();
  j["memory_flat"] = v.memory_flat;
  j["outputs_finite"] = v.outputs_finite;
  j["tokens_in_vocab"] = v.tokens_in_vocab;
  j["samples"] = samples;
  j["gpu_growth_bytes"] =
      v.gpu_growth_bytes ? nlohmann::ordered_json(*v.gpu_growth_bytes) : nlohmann::ordered_json(nullptr);
  j["gpu_allowed_bytes"] = v.gpu_growth_bytes ? nlohmann::ordered_json(0) : nlohmann::ordered_json(nullptr);
  j["rss_growth_bytes"] = v.rss_growth_bytes;
  j["rss_allowed_bytes"] = v.rss_allowed_bytes;
  return j;
}

namespace {

double mib(std::int64_t bytes) { return double(bytes) / double(1 << 20); }

}  // namespace

void print_sample_header() {
  std::printf("%8s %10s %10s %11s %11s %11s %12s %7s %9s\n", "step", "ms median", "ms max", "GPU MiB",
              "RSS MiB", "peak MiB", "cache tokens", "finite", "in vocab");
  flush_stdout();
}

void print_sample_row(const SoakSample& s) {
  const std::string gpu = s.gpu_mem_bytes ? std::to_string(std::int64_t(mib(*s.gpu_mem_bytes))) : "-";
  std::printf("%8lld %10.3f %10.3f %11s %11.1f %11.1f %12lld %7s %9s\n", static_cast<long long>(s.step),
              s.ms_median, s.ms_max, gpu.c_str(), mib(s.rss_bytes), mib(s.peak_rss_bytes),
              static_cast<long long>(s.cache_tokens), s.finite() ? "yes" : "NO", s.tokens_in_vocab() ? "yes" : "NO");
  flush_stdout();
}

std::string verdict_text(const SoakVerdict& v) {
  const std::string gpu = v.gpu_growth_bytes ? concat("GPU grew ", format_bytes(*v.gpu_growth_bytes), " of 0 bytes allowed, ")
                                             : std::string();
  const std::string memory = concat(v.memory_flat ? "memory flat after warm-up (" : "MEMORY GREW after warm-up (", gpu,
                                    "RSS grew ", format_bytes(v.rss_growth_bytes), " of ",
                                    format_bytes(v.rss_allowed_bytes), " allowed)");
  return concat("verdict: ", v.pass() ? "PASS" : "FAIL", ": ", memory, ", ",
                v.outputs_finite ? "every logit finite" : "NON-FINITE LOGITS", ", ",
                v.tokens_in_vocab ? "every token in the vocabulary" : "TOKENS OUTSIDE THE VOCABULARY");
}

}  // namespace dso::cli
