// The engine refuses what it cannot do, with a message that says why, before
// it allocates or changes anything.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/device.h"
#include "core/error.h"
#include "offload/available_memory.h"
#include "offload/engine.h"
#include "support/engine_cases.h"
#include "support/error_of.h"

namespace dso::test {
namespace {

EngineConfig small_config(Policy policy) {
  EngineConfig c;
  c.shape = {3, 4, 2, 8};
  c.policy = policy;
  c.batch = 2;
  c.capacity = 16;
  c.budget.k = 2;
  c.channels = LabelChannels::leading(c.shape, 2);
  return c;
}

TEST(EngineValidation, RefusesBadConfigurations) {
  struct Case {
    const char* what;
    std::function<void(EngineConfig&)> change;
    const char* message;
  };
  const Case cases[] = {
      {"kv heads", [](EngineConfig& c) { c.shape.kv_heads = 3; }, "not a multiple of kv_heads"},
      {"batch", [](EngineConfig& c) { c.batch = 0; }, "batch must be positive"},
      {"capacity", [](EngineConfig& c) { c.capacity = 0; }, "capacity must be in"},
      {"capacity 2^31", [](EngineConfig& c) { c.capacity = std::int64_t(1) << 31; }, "capacity must be in"},
      {"dtype", [](EngineConfig& c) { c.dtype = DType(7); }, "dtype must be f16 or bf16"},
      {"no channels", [](EngineConfig& c) { c.channels = {}; }, "needs label channels"},
      {"channels for another shape", [](EngineConfig& c) { c.channels = LabelChannels::leading({2, 4, 2, 8}, 2); },
       "label channels are for 2 layers"},
      {"channel past head_dim", [](EngineConfig& c) { c.channels.index[3] = 8; }, "outside [0, 8)"},
      {"sync layer", [](EngineConfig& c) { c.sync_layers = {0, 3}; }, "sync layer 3 is outside [0, 3)"},
      {"no budget", [](EngineConfig& c) { c.budget.k = 0; }, "set budget.k or k_fraction"},
      {"both budgets", [](EngineConfig& c) { c.k_fraction = 0.5; }, "not both"},
      {"negative recent", [](EngineConfig& c) { c.budget.recent = -1; }, "must not be negative"},
      {"k_fraction", [](EngineConfig& c) { c.budget.k = 0, c.k_fraction = 1.5; }, "k_fraction must be in [0, 1]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EngineConfig config = small_config(Policy::ds_offload);
    c.change(config);
    EXPECT_NE(error_of([&] { Engine::create(config); }).find(c.message), std::string::npos)
        << error_of([&] { Engine::create(config); });
    EXPECT_NE(error_of([&] { Engine::plan(config); }).find(c.message), std::string::npos);
  }
}

TEST(EngineValidation, DensePoliciesNeedNoChannels) {
  for (Policy p : {Policy::dense_gpu, Policy::flexgen}) {
    EngineConfig config = small_config(p);
    config.channels = {};
    config.budget.k = 0;
    EXPECT_NO_THROW(Engine::create(config));
  }
}

std::vector<Half> random_tokens(std::int64_t count, int kv_heads, int d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<Half> x(std::size_t(count) * kv_heads * d);
  for (Half& v : x) v = from_float<Half>(normal(rng));
  return x;
}

// A refused prefill changes nothing: the engine then decodes exactly as one
// that never saw it.
TEST(EngineValidation, PrefillPastCapacityChangesNothing) {
  for (Policy p : {Policy::dense_gpu, Policy::ds_gpu, Policy::flexgen, Policy::ds_offload, Policy::ds_offload_sync}) {
    SCOPED_TRACE(std::string(policy_name(p)));
    const EngineConfig config = small_config(p);
    const auto refused = Engine::create(config);
    const auto plain = Engine::create(config);
    const auto first = random_tokens(10, 2, 8, 1);
    const auto second = random_tokens(7, 2, 8, 2);
    for (Engine* e : {refused.get(), plain.get()})
      for (int l = 0; l < 3; ++l) e->prefill(l, 1, first.data(), first.data(), 10);
    const std::string message = error_of([&] { refused->prefill(1, 1, second.data(), second.data(), 7); });
    EXPECT_NE(message.find("would hold 17 tokens, past its capacity of 16"), std::string::npos) << message;
    EXPECT_EQ(refused->length(1, 1), 10);

    const auto q = random_tokens(2, 4, 8, 3);
    const auto kv = random_tokens(2, 2, 8, 4);
    std::vector<Half> out_refused(q.size()), out_plain(q.size());
    for (int l = 0; l < 3; ++l) {
      const void* q_next = l + 1 < 3 ? q.data() : nullptr;
      refused->decode(l, q.data(), kv.data(), kv.data(), q_next, out_refused.data());
      plain->decode(l, q.data(), kv.data(), kv.data(), q_next, out_plain.data());
      expect_bitwise_equal(out_refused, out_plain);
    }
  }
}

TEST(EngineValidation, DecodeAtCapacityAppendsToNoSequence) {
  const EngineConfig config = small_config(Policy::ds_offload_sync);
  const auto engine = Engine::create(config);
  const auto full = random_tokens(16, 2, 8, 5);
  engine->prefill(0, 1, full.data(), full.data(), 16);
  engine->prefill(0, 0, full.data(), full.data(), 3);
  const auto q = random_tokens(2, 4, 8, 6);
  const auto kv = random_tokens(2, 2, 8, 7);
  std::vector<Half> out(q.size());
  const std::string message = error_of([&] { engine->decode(0, q.data(), kv.data(), kv.data(), nullptr, out.data()); });
  EXPECT_NE(message.find("sequence 1 holds 16 tokens at layer 0"), std::string::npos) << message;
  EXPECT_EQ(engine->length(0, 0), 3);
  EXPECT_EQ(engine->length(1, 0), 16);
}

TEST(EngineValidation, OffloadNeedsTheSpeculativeQuery) {
  EngineConfig config = small_config(Policy::ds_offload);
  config.sync_layers = {0};
  const auto engine = Engine::create(config);
  const auto q = random_tokens(2, 4, 8, 8);
  const auto kv = random_tokens(2, 2, 8, 9);
  std::vector<Half> out(q.size());
  std::string message = error_of([&] { engine->decode(0, q.data(), kv.data(), kv.data(), nullptr, out.data()); });
  EXPECT_NE(message.find("needs q_next"), std::string::npos) << message;
  EXPECT_EQ(engine->length(0, 0), 0);

  // A selection made for a cache that has since grown is stale.
  engine->decode(0, q.data(), kv.data(), kv.data(), q.data(), out.data());
  engine->prefill(1, 0, kv.data(), kv.data(), 1);
  message = error_of([&] { engine->decode(1, q.data(), kv.data(), kv.data(), q.data(), out.data()); });
  EXPECT_NE(message.find("decode layer 0 with q_next first"), std::string::npos) << message;
  EXPECT_EQ(engine->length(1, 1), 0);
}

// 2^31 - 1 tokens of llama-3-8b for 8 sequences is 2 PiB: the plan is
// refused before anything is allocated (an allocation of that size would
// fail differently, or not at all until touched).
TEST(EngineValidation, RefusesAPlanPastHostMemory) {
  EngineConfig config;
  config.shape = {32, 32, 8, 128};
  config.batch = 8;
  config.capacity = (std::int64_t(1) << 31) - 1;
  config.budget.k = 64;
  config.channels = LabelChannels::leading(config.shape, 8);
  for (Backend backend : {Backend::cpu, Backend::cuda})
    for (Policy p : {Policy::ds_offload, Policy::dense_gpu}) {
      config.backend = backend;
      config.policy = p;
      const MemoryPlan plan = Engine::plan(config);
      ASSERT_GT(plan.host_bytes + plan.gpu_bytes, available_host_memory().bytes);
      const std::string message = error_of([&] { Engine::create(config); });
      SCOPED_TRACE(message);
      if (backend == Backend::cpu) {
        // The cpu backend holds the GPU's share in host memory as well.
        EXPECT_EQ(message.rfind("needs ", 0), 0u);
        EXPECT_NE(message.find(" of host memory for the K/V cache"), std::string::npos);
        EXPECT_NE(message.find("available"), std::string::npos);
      } else if (p == Policy::ds_offload) {
        EXPECT_EQ(message.rfind("needs 2048.0 TiB of host memory for the K/V cache, ", 0), 0u);
        EXPECT_NE(message.find("available"), std::string::npos);
      } else {  // dense_gpu keeps K/V on the GPU, the one that is missing or too small
        EXPECT_TRUE(message.find("none is visible") != std::string::npos ||
                    message.find("of GPU memory for the K/V cache") != std::string::npos);
      }
      EXPECT_THROW(Engine::check_fits(config), Error);
    }
}

TEST(EngineValidation, CudaBackendWithoutGpuSaysSo) {
  if (gpu_available()) GTEST_SKIP() << "a GPU is present: this checks the message where there is none";
  EngineConfig config = small_config(Policy::ds_gpu);
  config.backend = Backend::cuda;
  const std::string message = error_of([&] { Engine::create(config); });
  EXPECT_NE(message.find("the cuda backend needs a GPU and none is visible"), std::string::npos) << message;
}

TEST(Policy, NamesRoundTripAndUnknownNamesListTheChoices) {
  for (Policy p : {Policy::dense_gpu, Policy::ds_gpu, Policy::flexgen, Policy::ds_offload, Policy::ds_offload_sync})
    EXPECT_EQ(parse_policy(policy_name(p)), p);
  const std::string message = error_of([] { parse_policy("ds_ofload"); });
  EXPECT_NE(message.find("unknown policy 'ds_ofload' (choose from dense_gpu, ds_gpu, flexgen, ds_offload, "
                         "ds_offload_sync)"),
            std::string::npos)
      << message;
  EXPECT_TRUE(keeps_kv_on_host(Policy::flexgen));
  EXPECT_FALSE(keeps_kv_on_host(Policy::ds_gpu));
  EXPECT_TRUE(is_sparse(Policy::ds_offload_sync));
  EXPECT_FALSE(is_sparse(Policy::flexgen));
}

}  // namespace
}  // namespace dso::test
