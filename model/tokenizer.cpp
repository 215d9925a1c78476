#include "model/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>

#include "core/error.h"
#include "core/printable.h"
#include "model/bpe.h"
#include "model/byte_unicode.h"
#include "model/gguf.h"
#include "model/unicode.h"

namespace dso {
namespace {

constexpr std::string_view kSpaceMark = "\xe2\x96\x81";  // U+2581, SentencePiece's stand-in for a space

std::uint64_t pair_key(TokenId left, TokenId right) { return std::uint64_t(std::uint32_t(left)) << 32 | std::uint32_t(right); }

// The byte a SentencePiece byte token "<0xNN>" stands for.
std::optional<std::uint8_t> parse_byte_token(std::string_view text) {
  if (text.size() != 6 || !text.starts_with("<0x") || text.back() != '>') return std::nullopt;
  unsigned value = 0;
  for (char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') value |= unsigned(c - '0');
    else if (c >= 'A' && c <= 'F') value |= unsigned(c - 'A' + 10);
    else if (c >= 'a' && c <= 'f') value |= unsigned(c - 'a' + 10);
    else return std::nullopt;
  }
  return std::uint8_t(value);
}

PreTokenizer pre_tokenizer_named(const GgufFile& file, std::string_view name) {
  // Names as llama.cpp's converter writes them; those listed share SmolLM's
  // digits-then-GPT-2 splitting.
  static constexpr std::array<std::string_view, 7> isolated_digits = {"smollm",    "starcoder", "refact",  "command-r",
                                                                      "codeshell", "exaone",    "minerva"};
  if (name == "gpt2" || name == "default") return PreTokenizer::gpt2;
  if (std::find(isolated_digits.begin(), isolated_digits.end(), name) != isolated_digits.end())
    return PreTokenizer::gpt2_isolated_digits;
  file.check(false, "pre-tokenizer ", in_quotes(name), " is not supported (gpt2, default, smollm, starcoder, refact, ",
             "command-r, codeshell, exaone and minerva are)");
  return PreTokenizer::gpt2;
}

std::optional<TokenId> optional_id(const GgufFile& file, const std::string& key, std::size_t vocab) {
  if (!file.has(key)) return std::nullopt;
  const auto id = file.get<std::uint32_t>(key);
  file.check(id < vocab, key, " is ", id, ", outside the vocabulary of ", vocab, " tokens");
  return TokenId(id);
}

// (left id << 32 | right id) -> the merge's rank, its index in tokenizer.ggml.merges.
std::unordered_map<std::uint64_t, std::int32_t> read_merge_ranks(const GgufFile& file, const Tokenizer& t) {
  const auto merges = file.get<std::vector<std::string_view>>("tokenizer.ggml.merges");
  file.check(merges.size() <= std::size_t(std::numeric_limits<std::int32_t>::max()), "too many merges");
  std::unordered_map<std::uint64_t, std::int32_t> ranks;
  ranks.reserve(merges.size());
  std::string merged;
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const std::string_view m = merges[i];
    const std::size_t space = m.find(' ');
    file.check(space != std::string_view::npos && m.find(' ', space + 1) == std::string_view::npos, "merge ", i,
               " (", in_quotes(m), ") is not two tokens separated by one space");
    const std::string_view left = m.substr(0, space), right = m.substr(space + 1);
    merged.assign(left).append(right);
    const auto l = t.find(left), r = t.find(right), lr = t.find(merged);
    file.check(l && r && lr, "merge ", i, " (", in_quotes(m), ") names a token missing from the vocabulary");
    ranks.emplace(pair_key(*l, *r), std::int32_t(i));  // the first of duplicates wins
  }
  return ranks;
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  Tokenizer t;
  const auto model = file.get<std::string_view>("tokenizer.ggml.model");
  if (model == "gpt2") t.model_ = Model::byte_level_bpe;
  else if (model == "llama") t.model_ = Model::sentencepiece_bpe;
  else file.check(false, "tokenizer model ", in_quotes(model), " is not supported (gpt2 and llama are)");
  const bool spm = t.model_ == Model::sentencepiece_bpe;

  const auto tokens = file.get<std::vector<std::string_view>>("tokenizer.ggml.tokens");
  const std::size_t n = tokens.size();
  file.check(n > 0 && n <= std::size_t(std::numeric_limits<TokenId>::max()), "tokenizer.ggml.tokens holds ", n,
             " tokens");
  t.text_.assign(tokens.begin(), tokens.end());
  t.id_of_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) t.id_of_.emplace(t.text_[i], TokenId(i));  // the first of duplicates wins

  t.kind_.assign(n, TokenKind::normal);
  if (file.has("tokenizer.ggml.token_type")) {
    const auto types = file.get<std::vector<std::int32_t>>("tokenizer.ggml.token_type");
    file.check(types.size() == n, "tokenizer.ggml.token_type has ", types.size(), " entries for ", n, " tokens");
    for (std::size_t i = 0; i < n; ++i) {
      file.check(types[i] >= 1 && types[i] <= 6, "token ", i, " has type ", types[i], ", expected 1 to 6");
      t.kind_[i] = TokenKind(types[i]);
    }
  }

  if (spm || file.has("tokenizer.ggml.scores")) {
    t.score_ = file.get<std::vector<float>>("tokenizer.ggml.scores");
    file.check(t.score_.size() == n, "tokenizer.ggml.scores has ", t.score_.size(), " entries for ", n, " tokens");
  }

  t.bos_ = optional_id(file, "tokenizer.ggml.bos_token_id", n);
  t.eos_ = optional_id(file, "tokenizer.ggml.eos_token_id", n);
  t.unk_ = optional_id(file, "tokenizer.ggml.unknown_token_id", n);
  t.add_bos_ = file.get_or<bool>("tokenizer.ggml.add_bos_token", spm);
  t.add_space_prefix_ = file.get_or<bool>("tokenizer.ggml.add_space_prefix", spm);

  for (std::size_t i = 0; i < n; ++i)
    if ((t.kind_[i] == TokenKind::control || t.kind_[i] == TokenKind::user_defined) && !t.text_[i].empty())
      t.special_.push_back(TokenId(i));
  std::stable_sort(t.special_.begin(), t.special_.end(),
                   [&](TokenId a, TokenId b) { return t.text_[a].size() > t.text_[b].size(); });

  t.byte_token_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    if (const auto id = t.find(spm ? std::string_view(name) : byte_to_unicode(std::uint8_t(b)))) t.byte_token_[b] = *id;
  }

  if (!spm) {
    t.pre_ = pre_tokenizer_named(file, file.get_or<std::string_view>("tokenizer.ggml.pre", "gpt2"));
    t.merge_rank_ = read_merge_ranks(file, t);
  }
  return t;
}

void Tokenizer::check_id(TokenId id) const {
  require(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary of ", vocab_size(), " tokens");
}

std::string_view Tokenizer::token_text(TokenId id) const {
  check_id(id);
  return text_[std::size_t(id)];
}

TokenKind Tokenizer::token_kind(TokenId id) const {
  check_id(id);
  return kind_[std::size_t(id)];
}

std::optional<TokenId> Tokenizer::find(std::string_view text) const {
  const auto it = id_of_.find(text);
  if (it == id_of_.end()) return std::nullopt;
  return it->second;
}

std::optional<TokenId> Tokenizer::find_mergeable(std::string_view text) const {
  const auto id = find(text);
  if (id && kind_[std::size_t(*id)] == TokenKind::normal) return id;
  return std::nullopt;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, EncodeOptions options) const {
  std::vector<TokenId> out;
  if (options.add_bos) {
    require(bos_.has_value(), "cannot add a BOS token: the vocabulary names none");
    out.push_back(*bos_);
  }
  // User-defined tokens are always read as such; control tokens only on request.
  std::size_t start = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::optional<TokenId> hit;
    for (TokenId id : special_) {
      if (kind_[std::size_t(id)] == TokenKind::control && !options.parse_special) continue;
      if (text.substr(pos).starts_with(text_[std::size_t(id)])) {
        hit = id;
        break;
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    encode_text(text.substr(start, pos - start), start == 0, out);
    out.push_back(*hit);
    pos += text_[std::size_t(*hit)].size();
    start = pos;
  }
  encode_text(text.substr(start), start == 0, out);
  return out;
}

void Tokenizer::encode_text(std::string_view text, bool at_start, std::vector<TokenId>& out) const {
  if (text.empty()) return;
  std::string prefixed;
  if (at_start && add_space_prefix_) {
    prefixed.reserve(text.size() + 1);
    prefixed.append(" ").append(text);
    text = prefixed;
  }
  if (model_ == Model::sentencepiece_bpe) {
    encode_sentencepiece(text, out);
    return;
  }
  for (std::string_view piece : pretokenize(text, pre_)) encode_byte_level(piece, out);
}

void Tokenizer::encode_byte_level(std::string_view text, std::vector<TokenId>& out) const {
  // A byte the vocabulary cannot spell is dropped before merging, so that its
  // neighbours may merge, as in the Hugging Face BPE.
  std::string spelt;
  spelt.reserve(text.size() * 2);
  for (char c : text)
    if (byte_token_[std::uint8_t(c)] >= 0) spelt.append(byte_to_unicode(std::uint8_t(c)));
  const PairPriority rank = [this](std::string_view left, std::string_view right) -> std::optional<double> {
    const auto l = find(left), r = find(right);
    if (!l || !r) return std::nullopt;
    const auto it = merge_rank_.find(pair_key(*l, *r));
    if (it == merge_rank_.end()) return std::nullopt;
    return -double(it->second);
  };
  for (std::string_view symbol : bpe_merge(spelt, rank)) out.push_back(*find(symbol));
}

void Tokenizer::encode_sentencepiece(std::string_view text, std::vector<TokenId>& out) const {
  std::string marked;
  marked.reserve(text.size() + 8);
  for (char c : text) {
    if (c == ' ') marked.append(kSpaceMark);
    else marked += c;
  }
  const PairPriority score = [this](std::string_view left, std::string_view right) -> std::optional<double> {
    const auto id = find_mergeable(std::string_view(left.data(), left.size() + right.size()));
    if (!id) return std::nullopt;
    return double(score_[std::size_t(*id)]);
  };
  for (std::string_view symbol : bpe_merge(marked, score)) {
    if (const auto id = find_mergeable(symbol)) out.push_back(*id);
    else push_byte_tokens(symbol, out);
  }
}

void Tokenizer::push_byte_tokens(std::string_view bytes, std::vector<TokenId>& out) const {
  for (char c : bytes) {
    const auto b = std::uint8_t(c);
    if (byte_token_[b] >= 0) {
      out.push_back(byte_token_[b]);
    } else {
      require(unk_.has_value(), "byte 0x", std::hex, int(b), " has no token and the vocabulary has no unknown token");
      out.push_back(*unk_);
    }
  }
}

std::string Tokenizer::piece(TokenId id) const {
  check_id(id);
  const std::string& text = text_[std::size_t(id)];
  switch (kind_[std::size_t(id)]) {
    case TokenKind::normal: break;
    case TokenKind::byte:
      if (const auto b = parse_byte_token(text)) return std::string(1, char(*b));
      return text;
    default: return text;
  }
  std::string out;
  if (model_ == Model::sentencepiece_bpe) {
    for (std::size_t pos = 0; pos < text.size();) {
      if (std::string_view(text).substr(pos).starts_with(kSpaceMark)) {
        out += ' ';
        pos += kSpaceMark.size();
      } else {
        out += text[pos++];
      }
    }
    return out;
  }
  for (std::size_t pos = 0; pos < text.size();) {
    const unicode::Decoded d = unicode::decode_utf8(text, pos);
    if (const auto b = unicode_to_byte(d.cp); b && d.valid) out += char(*b);
    else out.append(text, pos, std::size_t(d.length));
    pos += std::size_t(d.length);
  }
  return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids) const {
  std::string out;
  for (TokenId id : ids) out += piece(id);
  if (add_space_prefix_ && !ids.empty() && !out.empty() && out[0] == ' ') {
    const TokenKind first = kind_[std::size_t(ids[0])];
    if (first == TokenKind::normal || first == TokenKind::byte) out.erase(0, 1);
  }
  return out;
}

}  // namespace dso
