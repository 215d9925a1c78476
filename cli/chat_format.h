#pragma once
// How a chat model wants a prompt wrapped, read from its GGUF: ChatML turns
// for a vocabulary that has <|im_start|> and <|im_end|>, and the system turn
// that the model's own chat template (tokenizer.chat_template) inserts when a
// conversation has none, as SmolLM2's does, so that a prompt here is the one
// llama.cpp and transformers build from the same template.
#include <optional>
#include <string>
#include <string_view>

namespace dso::cli {

struct ChatFormat {
  bool chatml = false;
  std::optional<std::string> default_system;  // the template's own system turn, where it has one
};

// `chat_template`: the GGUF's tokenizer.chat_template, empty where absent.
// Only the ChatML pattern is recognised; any other template adds no system turn.
ChatFormat chat_format(bool has_chatml_tokens, std::string_view chat_template);

// One user turn and the opening of the assistant's: `system` where given,
// else the template's default system turn. Without ChatML, the prompt as is.
std::string chat_prompt(const ChatFormat& format, const std::string& system, const std::string& user);

// What the summary says about the wrapping: "none", "ChatML" or
// "ChatML with the template's system turn".
std::string describe(const ChatFormat& format, const std::string& system);

}  // namespace dso::cli
