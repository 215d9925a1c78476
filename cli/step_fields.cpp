#include "cli/step_fields.h"

namespace dso::cli {

void put_step_fields(nlohmann::ordered_json& j, const StepFields& f) {
  const double seconds = f.ms_per_step / 1e3;
  j["device"] = f.device;
  j["policy"] = policy_name(f.policy);
  j["shape"] = f.shape;
  j["weights"] = f.weights;
  j["context"] = f.context;
  j["batch"] = f.batch;
  j["k"] = f.k;
  j["r"] = f.r;
  j["ms_per_step"] = f.ms_per_step;
  j["tokens_per_s"] = f.batch / seconds;
  j["h2d_bytes_per_step"] = f.h2d_bytes_per_step;
  j["h2d_GBps"] = double(f.h2d_bytes_per_step) / seconds / 1e9;
  if (f.pcie_h2d_GBps)
    j["pcie_h2d_GBps"] = *f.pcie_h2d_GBps;
  else
    j["pcie_h2d_GBps"] = nullptr;
}

}  // namespace dso::cli
