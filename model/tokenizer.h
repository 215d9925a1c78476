#pragma once
// Text to token ids and back, from the tokenizer a GGUF file carries
// (tokenizer.ggml.*). Two models:
//  - byte-level BPE (tokenizer.ggml.model "gpt2": GPT-2, SmolLM): text is
//    split by the GPT-2 pattern (pretokenizer.h; tokenizer.ggml.pre picks
//    the variant), each piece's bytes are spelt as code points
//    (byte_unicode.h) and merged by the ranks of tokenizer.ggml.merges;
//  - SentencePiece-style BPE ("llama": Llama 2): spaces become U+2581 '▁',
//    characters merge by the scores of the pieces they form, and a piece
//    missing from the vocabulary falls back to its bytes' <0xNN> tokens.
// decode(encode(text)) == text for any bytes the vocabulary can spell (for
// SentencePiece, any text without U+2581, which reads back as a space).
// Bytes it cannot spell become the unknown token under SentencePiece and are
// dropped under byte-level BPE, as the reference tokenizers do (SmolLM2's
// vocabulary lacks 21 bytes: a few C0 controls, and bytes that occur only in
// invalid UTF-8 or in code points past U+3FFFF). Where the vocabulary asks
// for a space prefix (add_space_prefix), it goes in front of the text only,
// not after special tokens, so that decode can take it off again.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/pretokenizer.h"

namespace dso {

class GgufFile;

using TokenId = std::int32_t;

// tokenizer.ggml.token_type values.
enum class TokenKind : std::uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct EncodeOptions {
  bool add_bos = false;        // prepend the BOS token (the file's add_bos_token says whether the model expects it)
  bool parse_special = false;  // read control tokens' text in the input as those tokens ("<|im_start|>")
};

class Tokenizer {
 public:
  enum class Model { byte_level_bpe, sentencepiece_bpe };

  // Throws dso::Error naming the file and the missing or inconsistent key.
  static Tokenizer from_gguf(const GgufFile& file);

  Model model() const { return model_; }
  int vocab_size() const { return int(text_.size()); }
  std::string_view token_text(TokenId id) const;  // as the vocabulary spells it
  TokenKind token_kind(TokenId id) const;
  std::optional<TokenId> find(std::string_view text) const;

  std::optional<TokenId> bos() const { return bos_; }
  std::optional<TokenId> eos() const { return eos_; }
  bool adds_bos() const { return add_bos_; }

  std::vector<TokenId> encode(std::string_view text, EncodeOptions options = {}) const;

  // The bytes a token stands for in text (control tokens: their own text);
  // what a generator streams out token by token.
  std::string piece(TokenId id) const;
  // A whole text from its first token: the pieces joined, less the space the
  // encoder put in front of the text when the vocabulary asks for one
  // (add_space_prefix).
  std::string decode(std::span<const TokenId> ids) const;

 private:
  Tokenizer() = default;
  void check_id(TokenId id) const;
  void encode_text(std::string_view text, bool at_start, std::vector<TokenId>& out) const;
  void encode_byte_level(std::string_view text, std::vector<TokenId>& out) const;
  void encode_sentencepiece(std::string_view text, std::vector<TokenId>& out) const;
  void push_byte_tokens(std::string_view bytes, std::vector<TokenId>& out) const;
  std::optional<TokenId> find_mergeable(std::string_view text) const;

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Model model_ = Model::byte_level_bpe;
  PreTokenizer pre_ = PreTokenizer::gpt2;
  std::vector<std::string> text_;
  std::vector<TokenKind> kind_;
  std::vector<float> score_;
  std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>> id_of_;
  std::unordered_map<std::uint64_t, std::int32_t> merge_rank_;  // (left id << 32 | right id) -> rank
  std::vector<TokenId> special_;                                // matched in the input text, longest first
  std::vector<TokenId> byte_token_;                             // per byte value (<0xNN> or its code point), or -1
  std::optional<TokenId> bos_, eos_, unk_;
  bool add_bos_ = false;
  bool add_space_prefix_ = false;
};

}  // namespace dso
