// Pins the cpu engine's outputs and counters, bit for bit, to those of the
// build before the policies became objects (commit 46027e3): a refactor of the
// engine must not change a single output bit, a selection or a byte count.
// The digests were printed by this test on that commit; a deliberate change
// of behaviour updates them in the same commit, saying why.
#include <cstdint>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "support/engine_cases.h"

namespace dso::test {
namespace {

// FNV-1a over the bytes of every output and the counters of every step.
class Digest {
 public:
  void add(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < bytes; ++i) h_ = (h_ ^ p[i]) * 1099511628211ull;
  }
  void add(std::int64_t x) { add(&x, sizeof x); }
  std::uint64_t value() const { return h_; }

 private:
  std::uint64_t h_ = 14695981039346656037ull;
};

template <class T>
std::uint64_t run_digest(const EngineConfig& config, const DecodeInputs<T>& in) {
  const EngineRun<T> run = run_engine(config, in);
  Digest d;
  for (const auto& out : run.out) d.add(out.data(), out.size() * sizeof(T));
  for (const StepStats& s : run.step_stats) {
    d.add(s.steps);
    d.add(s.h2d_bytes);
    d.add(s.tokens_selected);
  }
  return d.value();
}

template <class T>
std::uint64_t sweep_digest(Selector selector) {
  Digest d;
  for (const EngineCase& c : engine_cases())
    for (Policy p : {Policy::dense_gpu, Policy::ds_gpu, Policy::flexgen, Policy::ds_offload,
                     Policy::ds_offload_sync}) {
      if (selector == Selector::sparq && p != Policy::ds_gpu) continue;
      const DecodeInputs<T> in = case_inputs<T>(c, engine_seeds[0], false);
      EngineConfig config = case_config(c, in, p);
      config.selector = selector;
      config.sparq_r = selector == Selector::sparq ? 2 : 0;
      const std::int64_t one = std::int64_t(run_digest(config, in));
      d.add(one);
    }
  return d.value();
}

struct Pin {
  const char* name;
  std::uint64_t (*digest)();
  std::uint64_t expected;
};

TEST(EnginePin, CpuOutputsAndCountersUnchanged) {
  const Pin pins[] = {
      {"f16 labels", [] { return sweep_digest<Half>(Selector::labels); }, 14604010366912515261u},
      {"bf16 labels", [] { return sweep_digest<BFloat16>(Selector::labels); }, 5989470374675486487u},
      {"f16 sparq", [] { return sweep_digest<Half>(Selector::sparq); }, 11622221845454791273u},
      {"bf16 sparq", [] { return sweep_digest<BFloat16>(Selector::sparq); }, 4693784081487440459u},
  };
  for (const Pin& pin : pins) EXPECT_EQ(pin.digest(), pin.expected) << pin.name;
}

}  // namespace
}  // namespace dso::test
