#include "cli/bench_options.h"

#include <cctype>

#include "core/error.h"

namespace dso::cli {

std::int64_t parse_token_count(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string tail = text.substr(digits);
  require(digits > 0 && digits <= 12 && (tail.empty() || tail == "K" || tail == "k" || tail == "M" || tail == "m"),
          "context '", text, "' is not a token count (e.g. 4096, 16K, 1M)");
  std::int64_t n = std::stoll(text.substr(0, digits));
  if (tail == "K" || tail == "k") n <<= 10;
  if (tail == "M" || tail == "m") n <<= 20;
  require(n >= 1, "context must be at least 1 token, got '", text, "'");
  return n;
}

}  // namespace dso::cli
