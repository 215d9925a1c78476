#pragma once
// The table the model mode of `dsoffload bench` prints for people on stderr;
// its JSON lines are cli/step_fields.h's.
#include <vector>

#include "cli/step_fields.h"

namespace dso::cli {

void print_model_table(const std::vector<StepFields>& results);

}  // namespace dso::cli
