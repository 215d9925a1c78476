#pragma once
// The table `dsoffload bench --attention-only` prints for people on stderr,
// so that stdout keeps only the JSON lines (cli/step_fields.h).
#include <vector>

#include "cli/step_fields.h"

namespace dso::cli {

void print_table(const std::vector<StepFields>& results);

}  // namespace dso::cli
