#include "cli/count_option.h"

#include <charconv>
#include <limits>

#include "core/error.h"

namespace dso::cli {

namespace detail {

template <class T>
std::string count_problem(const std::string& text, T min) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error == std::errc::result_out_of_range)
    return concat(text, " is past the largest value it takes, ", std::numeric_limits<T>::max());
  if (text.empty() || error != std::errc() || stop != end) return concat("'", text, "' is not a whole number");
  if (value >= min) return {};
  return min == 0 ? concat("must not be negative, got ", text) : concat("must be at least ", min, ", got ", text);
}

template std::string count_problem<int>(const std::string&, int);
template std::string count_problem<std::int64_t>(const std::string&, std::int64_t);
template std::string count_problem<std::uint64_t>(const std::string&, std::uint64_t);

}  // namespace detail

CLI::Option* add_token_count(CLI::App& sub, const std::string& name, std::string& text, const std::string& help) {
  return sub.add_option(name, text, help)->check(CLI::Validator(
      [](std::string& given) {
        return given.empty() ? std::string("'' is not a token count (e.g. 4096, 16K, 1M)") : std::string();
      },
      "TOKENS"));
}

}  // namespace dso::cli
