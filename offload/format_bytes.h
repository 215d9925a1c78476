#pragma once
// Byte counts for people: "64.0 GiB", "12.5 MiB".
#include <cstdint>
#include <string>

namespace dso {

std::string format_bytes(std::int64_t bytes);

}  // namespace dso
