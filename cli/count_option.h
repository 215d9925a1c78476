#pragma once
// Options that count something (tokens, steps, channels, seeds). CLI11 alone
// reads '' as 0 and wraps '-1' into an unsigned seed, so a value that is no
// count would silently mean the option's default or a huge number; these
// check the text the user typed while the command line is parsed, before any
// work, and CLI11 reports a refusal as "--name: <why>" on one line.
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>

namespace dso::cli {

namespace detail {

template <class T>
struct element {
  using type = T;
};
template <class T>
struct element<std::vector<T>> {
  using type = T;
};

// Why `text` is no decimal number of T in [min, T's largest]; empty where it is one.
template <class T>
std::string count_problem(const std::string& text, T min);

}  // namespace detail

// Adds option `name` for `value` (an integer, or a list of them), whose every
// value must be a whole number of at least `min`.
template <class T>
CLI::Option* add_count(CLI::App& sub, const std::string& name, T& value, const std::string& help,
                       typename detail::element<T>::type min = 1) {
  using E = typename detail::element<T>::type;
  static_assert(std::is_integral_v<E>, "a count is an integer");
  return sub.add_option(name, value, help)->check(
      CLI::Validator([min](std::string& text) { return detail::count_problem<E>(text, min); }, "COUNT"));
}

// Adds option `name` for a token count spelt as 4096, 16K or 1M (read later
// by parse_token_count), whose absence leaves `text` empty: the mode's
// default. Given empty, it is refused here rather than taken for the default.
CLI::Option* add_token_count(CLI::App& sub, const std::string& name, std::string& text, const std::string& help);

}  // namespace dso::cli
