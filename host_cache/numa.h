#pragma once
// The machine's NUMA layout as far as the cache cares: how many memory nodes
// there are, which one the GPU is attached to, and how to put memory and
// gather/copy threads there. Host memory on the GPU's node avoids a socket
// hop on every PCIe read. On a one-node machine every call still runs and
// changes nothing that matters.
#include <cstdint>

struct hwloc_topology;

namespace dso {

class NumaTopology {
 public:
  // The topology of this machine, discovered once per process.
  static const NumaTopology& machine();

  ~NumaTopology();
  NumaTopology(const NumaTopology&) = delete;
  NumaTopology& operator=(const NumaTopology&) = delete;

  int node_count() const { return node_count_; }
  // Logical index of the node closest to CUDA device 0; 0 without a GPU or
  // where the topology does not say.
  int gpu_node() const { return gpu_node_; }

  // Binds the calling thread to the CPUs of `node`. Returns false where the
  // system refuses (binding is a performance hint; the thread runs anyway).
  bool bind_current_thread(int node) const;
  // True when the calling thread may run only on CPUs of `node`.
  bool current_thread_within(int node) const;

  // Memory whose pages are bound to `node`; free with free_on_node.
  void* allocate_on_node(std::int64_t bytes, int node) const;
  void free_on_node(void* p, std::int64_t bytes) const;

 private:
  NumaTopology();
  hwloc_topology* topology_ = nullptr;
  int node_count_ = 1;
  int gpu_node_ = 0;
};

}  // namespace dso
