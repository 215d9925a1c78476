#pragma once
// A policy as one object: where it keeps K/V, whether and how it selects,
// what it moves over PCIe, and its decode of one layer on each backend. Each
// policy is a PolicyDef in its own offload/policy_<name>.cpp, listed once in
// offload/policy_registry.cpp; the rest of the engine asks these objects and
// names no policy. The memory plan (memory_plan.cpp) follows from the traits.
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/dtype.h"
#include "offload/engine.h"

namespace dso {

template <class T>
class CpuEngine;  // offload/cpu_engine.h
template <class T>
struct CpuStep;   // offload/cpu_engine.h: one layer's tensors and lengths
class CudaEngine;  // offload/cuda_backend.h
struct CudaStep;   // offload/cuda_backend.h

// What one cuda engine holds for its policy beyond the cache (selection
// workspaces, fetch slots, a prefetcher), and the policy's decode over it.
class CudaPolicyState {
 public:
  virtual ~CudaPolicyState() = default;
  // Throws unless the layer can be decoded with the cache as it is now
  // (ds_offload: its speculative selection was issued).
  virtual void check_ready(int /*layer*/, std::span<const std::int64_t> /*lengths*/) const {}
  virtual void decode(CudaEngine& engine, const CudaStep& step) = 0;
};

// GPU memory a policy's CudaPolicyState takes, by part.
struct CudaPolicyBytes {
  std::int64_t fetch = 0;      // slots, the prefetcher's selection workspace
  std::int64_t selection = 0;  // selection workspace and indices of the compute stream
};

class PolicyDef {
 public:
  virtual ~PolicyDef() = default;
  virtual Policy id() const = 0;
  virtual std::string_view name() const = 0;

  virtual bool keeps_kv_on_host() const = 0;
  // Attends a selection of the cached tokens rather than all of them.
  virtual bool is_sparse() const = 0;
  // Keeps the full keys where selection runs, which Selector::sparq reads.
  virtual bool keys_beside_selection() const { return false; }
  // GPU buffers fetched K/V land in.
  virtual int fetch_slots() const { return 0; }
  // Layers that select with the speculative query handed to the layer before.
  virtual bool selects_speculatively(const EngineConfig& /*config*/, int /*layer*/) const { return false; }
  // K/V tokens of one (sequence, KV head) holding n before the step that the
  // layer's decode moves from the host cache to the GPU.
  virtual std::int64_t fetched_tokens(const EngineConfig& /*config*/, std::int64_t /*n*/) const { return 0; }

  // One layer of one decode step on the cpu backend.
  virtual void decode_cpu(CpuEngine<Half>& engine, const CpuStep<Half>& step) const = 0;
  virtual void decode_cpu(CpuEngine<BFloat16>& engine, const CpuStep<BFloat16>& step) const = 0;

  virtual CudaPolicyBytes cuda_bytes(const EngineConfig& config) const = 0;
  virtual std::unique_ptr<CudaPolicyState> make_cuda_state(CudaEngine& engine) const = 0;
};

// Forwards both cpu overloads to Derived's decode_cpu_as<T>.
template <class Derived>
class CpuDecodeBoth : public PolicyDef {
 public:
  void decode_cpu(CpuEngine<Half>& e, const CpuStep<Half>& step) const override {
    static_cast<const Derived&>(*this).decode_cpu_as(e, step);
  }
  void decode_cpu(CpuEngine<BFloat16>& e, const CpuStep<BFloat16>& step) const override {
    static_cast<const Derived&>(*this).decode_cpu_as(e, step);
  }
};

// The registry: every policy, in the order choices are listed.
std::span<const PolicyDef* const> registered_policies();
// Throws dso::Error for a value that names no registered policy.
const PolicyDef& policy_def(Policy p);

}  // namespace dso
