#include "cli/chat_format.h"

namespace dso::cli {

namespace {

// The template writes its default turn as a Jinja string literal,
// {{ '<|im_start|>system\nTEXT<|im_end|>\n' }}, inside a branch taken when
// the first message is not the system's.
std::optional<std::string> template_system_turn(std::string_view t) {
  if (t.find("!= 'system'") == std::string_view::npos && t.find("!= \"system\"") == std::string_view::npos)
    return std::nullopt;
  constexpr std::string_view open = "<|im_start|>system\n";
  const std::size_t start = t.find(open);
  if (start == std::string_view::npos) return std::nullopt;
  const std::size_t text = start + open.size();
  const std::size_t end = t.find("<|im_end|>", text);
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view turn = t.substr(text, end - text);
  // Jinja markup inside is a turn built from the messages, not a fixed one.
  if (turn.find("{{") != std::string_view::npos || turn.find("{%") != std::string_view::npos ||
      turn.find('\'') != std::string_view::npos)
    return std::nullopt;
  return std::string(turn);
}

}  // namespace

ChatFormat chat_format(bool has_chatml_tokens, std::string_view chat_template) {
  if (!has_chatml_tokens) return {};
  return {true, template_system_turn(chat_template)};
}

std::string chat_prompt(const ChatFormat& format, const std::string& system, const std::string& user) {
  if (!format.chatml) return user;
  const std::string& turn = system.empty() && format.default_system ? *format.default_system : system;
  std::string text;
  if (!turn.empty()) text += "<|im_start|>system\n" + turn + "<|im_end|>\n";
  return text + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
}

std::string describe(const ChatFormat& format, const std::string& system) {
  if (!format.chatml) return "none";
  if (system.empty() && format.default_system) return "ChatML with the template's system turn";
  return "ChatML";
}

}  // namespace dso::cli
