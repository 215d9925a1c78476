// dense_gpu: K/V in GPU memory, dense decode attention over every cached
// token; the reference where the cache fits.
#include "offload/cpu_engine.h"
#include "offload/cuda_backend.h"
#include "offload/policy_registry.h"

namespace dso {

namespace {

class DenseGpuState final : public CudaPolicyState {
 public:
  void decode(CudaEngine& e, const CudaStep& step) override {
    e.append_step(step);
    CudaCache& cache = e.cache();
    e.attend(step, as_const(cache.keys(step.layer)), as_const(cache.values(step.layer)),
             cache.device_lengths(step.layer), false, nullptr);
    e.count_attended();
  }
};

class DenseGpu final : public CpuDecodeBoth<DenseGpu> {
 public:
  Policy id() const override { return Policy::dense_gpu; }
  std::string_view name() const override { return "dense_gpu"; }
  bool keeps_kv_on_host() const override { return false; }
  bool is_sparse() const override { return false; }

  template <class T>
  void decode_cpu_as(CpuEngine<T>& e, const CpuStep<T>& step) const {
    e.append_step_token(step);
    for (int s = 0; s < e.config().batch; ++s)
      for (int h = 0; h < e.kv_heads(); ++h)
        e.attend(step, s, h, e.kv().template keys_as<T>(s, step.layer, h),
                 e.kv().template values_as<T>(s, step.layer, h), nullptr, step.lengths[std::size_t(s)] + 1);
  }

  CudaPolicyBytes cuda_bytes(const EngineConfig&) const override { return {}; }
  std::unique_ptr<CudaPolicyState> make_cuda_state(CudaEngine&) const override {
    return std::make_unique<DenseGpuState>();
  }
};

}  // namespace

const PolicyDef& dense_gpu_policy() {
  static const DenseGpu policy;
  return policy;
}

}  // namespace dso
