#include "host_cache/numa.h"

#include <hwloc.h>

#include <algorithm>
#include <array>

#include "gpu/check.h"
#include "core/device.h"
#include "core/error.h"

namespace dso {

namespace {

hwloc_obj_t node_object(hwloc_topology_t topology, int node, int node_count) {
  require(node >= 0 && node < node_count, "NUMA node ", node, " does not exist (this machine has ", node_count,
          ")");
  return hwloc_get_obj_by_type(topology, HWLOC_OBJ_NUMANODE, unsigned(node));
}

// The NUMA node whose CPUs are the PCI device's nearest non-I/O ancestor.
int node_of_gpu(hwloc_topology_t topology) {
  if (!gpu_available()) return 0;
  std::array<char, 32> bus_id{};
  DSO_CUDA_CHECK(cudaDeviceGetPCIBusId(bus_id.data(), int(bus_id.size()), 0));
  hwloc_obj_t pci = hwloc_get_pcidev_by_busidstring(topology, bus_id.data());
  if (pci == nullptr) return 0;
  hwloc_obj_t ancestor = hwloc_get_non_io_ancestor_obj(topology, pci);
  if (ancestor == nullptr || ancestor->nodeset == nullptr) return 0;
  const int os_index = hwloc_bitmap_first(ancestor->nodeset);
  if (os_index < 0) return 0;
  hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(topology, unsigned(os_index));
  return node == nullptr ? 0 : int(node->logical_index);
}

}  // namespace

const NumaTopology& NumaTopology::machine() {
  static const NumaTopology topology;
  return topology;
}

NumaTopology::NumaTopology() {
  require(hwloc_topology_init(&topology_) == 0, "hwloc could not initialise a topology");
  // PCI devices are needed to find the GPU's node, and only then: their
  // discovery is slow.
  if (gpu_available()) hwloc_topology_set_io_types_filter(topology_, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (hwloc_topology_load(topology_) != 0) {
    hwloc_topology_destroy(topology_);
    fail("hwloc could not discover this machine's topology");
  }
  node_count_ = std::max(1, hwloc_get_nbobjs_by_type(topology_, HWLOC_OBJ_NUMANODE));
  try {
    gpu_node_ = node_of_gpu(topology_);
  } catch (...) {
    hwloc_topology_destroy(topology_);
    throw;
  }
}

NumaTopology::~NumaTopology() { hwloc_topology_destroy(topology_); }

bool NumaTopology::bind_current_thread(int node) const {
  hwloc_obj_t obj = node_object(topology_, node, node_count_);
  if (obj == nullptr || hwloc_bitmap_iszero(obj->cpuset)) return false;
  return hwloc_set_cpubind(topology_, obj->cpuset, HWLOC_CPUBIND_THREAD) == 0;
}

bool NumaTopology::current_thread_within(int node) const {
  hwloc_obj_t obj = node_object(topology_, node, node_count_);
  if (obj == nullptr) return false;
  hwloc_bitmap_t bound = hwloc_bitmap_alloc();
  require(bound != nullptr, "hwloc could not allocate a bitmap");
  const bool within = hwloc_get_cpubind(topology_, bound, HWLOC_CPUBIND_THREAD) == 0 &&
                      hwloc_bitmap_isincluded(bound, obj->cpuset);
  hwloc_bitmap_free(bound);
  return within;
}

void* NumaTopology::allocate_on_node(std::int64_t bytes, int node) const {
  require(bytes > 0, "cannot allocate ", bytes, " bytes");
  hwloc_obj_t obj = node_object(topology_, node, node_count_);
  require(obj != nullptr, "NUMA node ", node, " has no hwloc object");
  // Without HWLOC_MEMBIND_STRICT hwloc falls back to a plain allocation where
  // the system cannot bind, which is still correct memory.
  void* p = hwloc_alloc_membind(topology_, std::size_t(bytes), obj->nodeset, HWLOC_MEMBIND_BIND,
                                HWLOC_MEMBIND_BYNODESET);
  require(p != nullptr, "could not allocate ", bytes, " bytes of host memory on NUMA node ", node);
  return p;
}

void NumaTopology::free_on_node(void* p, std::int64_t bytes) const {
  if (p != nullptr) hwloc_free(topology_, p, std::size_t(bytes));
}

}  // namespace dso
