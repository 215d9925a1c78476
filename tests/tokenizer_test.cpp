// Tokenizers read from GGUF metadata: the merge loop and both BPE flavours
// against naive references on synthetic vocabularies, round trips over
// arbitrary bytes, special tokens, refusals of broken vocabularies, and the
// real SmolLM2 tokenizer against ids from the Hugging Face implementation.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "model/bpe.h"
#include "model/byte_unicode.h"
#include "model/gguf.h"
#include "model/llama_config.h"
#include "model/pretokenizer.h"
#include "model/tokenizer.h"
#include "model/unicode.h"
#include "support/gguf_writer.h"
#include "support/smollm2.h"

namespace dso {
namespace {

using test::GgufWriter;
const std::string kMark = "\xe2\x96\x81";  // '▁'

std::vector<std::string> utf8_chars(std::string_view s) {
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < s.size();) {
    const auto n = std::size_t(unicode::decode_utf8(s, pos).length);
    out.emplace_back(s.substr(pos, n));
    pos += n;
  }
  return out;
}

// Merges the best adjacent pair (the leftmost among equals) until none merges,
// scanning the whole word each time.
std::vector<std::string> naive_merge(std::string_view word,
                                     const std::function<std::optional<double>(const std::string&, const std::string&)>& priority) {
  std::vector<std::string> s = utf8_chars(word);
  for (;;) {
    std::optional<std::size_t> best;
    double best_priority = 0;
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
      const auto p = priority(s[i], s[i + 1]);
      if (p && (!best || *p > best_priority)) best = i, best_priority = *p;
    }
    if (!best) return s;
    s[*best] += s[*best + 1];
    s.erase(s.begin() + std::ptrdiff_t(*best) + 1);
  }
}

std::string random_text(std::mt19937& rng, const std::vector<std::string>& alphabet, std::size_t max_len) {
  std::string out;
  const std::size_t n = rng() % (max_len + 1);
  for (std::size_t i = 0; i < n; ++i) out += alphabet[rng() % alphabet.size()];
  return out;
}

std::string random_bytes(std::mt19937& rng, std::size_t max_len) {
  std::string out(rng() % (max_len + 1), '\0');
  for (char& c : out) c = char(rng());
  return out;
}

TEST(BpeMerge, MatchesNaiveMerging) {
  for (unsigned seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    // Pseudo-random priorities with many ties and many pairs that never merge.
    const auto priority = [seed](std::string_view l, std::string_view r) -> std::optional<double> {
      const std::size_t h = std::hash<std::string>{}(std::string(l) + "|" + std::string(r) + std::to_string(seed));
      if (h % 4 == 0) return std::nullopt;
      return double(h % 5);
    };
    const std::vector<std::string> alphabet = {"a", "b", "c", "é", "日", "\xff"};
    for (int trial = 0; trial < 500; ++trial) {
      const std::string word = random_text(rng, alphabet, 40);
      std::vector<std::string> got;
      for (std::string_view s : bpe_merge(word, priority)) got.emplace_back(s);
      ASSERT_EQ(got, naive_merge(word, [&](const std::string& l, const std::string& r) { return priority(l, r); }))
          << "word: " << word;
    }
  }
}

// A byte-level vocabulary: the 256 byte spellings, two special tokens, and
// random merges over the bytes of `alphabet`.
struct ByteLevelVocab {
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  std::vector<std::string> merges;
};

ByteLevelVocab random_byte_level_vocab(std::mt19937& rng, const std::vector<std::string>& alphabet, int merges) {
  ByteLevelVocab v;
  for (int b = 0; b < 256; ++b) v.tokens.emplace_back(byte_to_unicode(std::uint8_t(b)));
  v.types.assign(256, 1);
  v.tokens.push_back("<|end|>");
  v.types.push_back(3);
  v.tokens.push_back("<tool>");
  v.types.push_back(4);
  std::vector<std::string> pool;
  for (const std::string& s : alphabet)
    for (char c : s) pool.emplace_back(byte_to_unicode(std::uint8_t(c)));
  std::set<std::string> known(v.tokens.begin(), v.tokens.end());
  for (int i = 0; i < merges; ++i) {
    const std::string a = pool[rng() % pool.size()], b = pool[rng() % pool.size()];
    if (!known.insert(a + b).second) continue;
    v.tokens.push_back(a + b);
    v.types.push_back(1);
    v.merges.push_back(a + " " + b);
    pool.push_back(a + b);
  }
  return v;
}

GgufWriter byte_level_file(const ByteLevelVocab& v, const std::string& pre = "smollm") {
  GgufWriter w;
  w.string("tokenizer.ggml.model", "gpt2");
  w.string("tokenizer.ggml.pre", pre);
  w.strings("tokenizer.ggml.tokens", v.tokens);
  w.array("tokenizer.ggml.token_type", v.types);
  w.strings("tokenizer.ggml.merges", v.merges);
  w.scalar<std::uint32_t>("tokenizer.ggml.bos_token_id", 256);
  w.scalar<std::uint32_t>("tokenizer.ggml.eos_token_id", 256);
  return w;
}

Tokenizer load(GgufWriter w) { return Tokenizer::from_gguf(GgufFile::parse(w.build(), "tokenizer.gguf")); }

std::vector<TokenId> reference_byte_level(const ByteLevelVocab& v, std::string_view text, PreTokenizer pre) {
  std::map<std::string, TokenId> id;
  for (std::size_t i = 0; i < v.tokens.size(); ++i) id.emplace(v.tokens[i], TokenId(i));
  std::map<std::pair<std::string, std::string>, double> rank;
  for (std::size_t i = 0; i < v.merges.size(); ++i) {
    const std::size_t space = v.merges[i].find(' ');
    rank.emplace(std::pair(v.merges[i].substr(0, space), v.merges[i].substr(space + 1)), double(i));
  }
  std::vector<TokenId> out;
  for (std::string_view piece : pretokenize(text, pre)) {
    std::string spelt;
    for (char c : piece) spelt += byte_to_unicode(std::uint8_t(c));
    const auto by_rank = [&](const std::string& l, const std::string& r) -> std::optional<double> {
      const auto it = rank.find({l, r});
      if (it == rank.end()) return std::nullopt;
      return -it->second;
    };
    for (const std::string& s : naive_merge(spelt, by_rank)) out.push_back(id.at(s));
  }
  return out;
}

TEST(ByteLevelTokenizer, MatchesNaiveBpeAndRoundTripsAnyBytes) {
  const std::vector<std::string> alphabet = {"a", "b", " ", "c", "'", "1", "\n", "é", "ab", " a"};
  for (unsigned seed : {4u, 5u, 6u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const ByteLevelVocab v = random_byte_level_vocab(rng, alphabet, 300);
    for (const std::string pre : {"smollm", "gpt2"}) {
      SCOPED_TRACE("pre-tokenizer " + pre);
      const Tokenizer t = load(byte_level_file(v, pre));
      EXPECT_EQ(t.model(), Tokenizer::Model::byte_level_bpe);
      EXPECT_EQ(t.vocab_size(), int(v.tokens.size()));
      const PreTokenizer kind = pre == "gpt2" ? PreTokenizer::gpt2 : PreTokenizer::gpt2_isolated_digits;
      for (int trial = 0; trial < 300; ++trial) {
        const std::string text = random_text(rng, alphabet, 30);
        const std::vector<TokenId> ids = t.encode(text);
        ASSERT_EQ(ids, reference_byte_level(v, text, kind)) << "text: '" << text << "'";
        ASSERT_EQ(t.decode(ids), text);
      }
      for (int trial = 0; trial < 300; ++trial) {
        const std::string text = random_bytes(rng, 40);
        ASSERT_EQ(t.decode(t.encode(text)), text);
        ASSERT_EQ(t.decode(t.encode(text, {.parse_special = true})), text);
      }
    }
  }
}

TEST(ByteLevelTokenizer, ReadsSpecialTokensOnlyWhereAsked) {
  std::mt19937 rng(7);
  const ByteLevelVocab v = random_byte_level_vocab(rng, {"a", "b"}, 20);
  const Tokenizer t = load(byte_level_file(v));
  const TokenId end = *t.find("<|end|>"), tool = *t.find("<tool>");
  EXPECT_EQ(t.token_kind(end), TokenKind::control);
  EXPECT_EQ(t.token_kind(tool), TokenKind::user_defined);
  const std::string text = "ab<|end|>ba<tool>a<|end|>";
  const std::vector<TokenId> plain = t.encode(text);
  const std::vector<TokenId> special = t.encode(text, {.parse_special = true});
  EXPECT_EQ(std::count(plain.begin(), plain.end(), end), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), tool), 1);  // user-defined tokens are always read
  EXPECT_EQ(std::count(special.begin(), special.end(), end), 2);
  EXPECT_EQ(special.back(), end);
  const std::vector<TokenId> before = t.encode("ab");
  EXPECT_TRUE(std::equal(before.begin(), before.end(), special.begin()));
  EXPECT_EQ(t.decode(plain), text);
  EXPECT_EQ(t.decode(special), text);

  const std::vector<TokenId> with_bos = t.encode("ab", {.add_bos = true});
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos.front(), *t.bos());
  EXPECT_EQ(std::vector<TokenId>(with_bos.begin() + 1, with_bos.end()), before);
  EXPECT_THROW(t.decode(std::vector<TokenId>{t.vocab_size()}), Error);
  EXPECT_THROW(t.piece(-1), Error);
}

TEST(ByteLevelTokenizer, SpacePrefixIsAddedAndRemoved) {
  std::mt19937 rng(8);
  const ByteLevelVocab v = random_byte_level_vocab(rng, {"a", " ", "b"}, 40);
  GgufWriter w = byte_level_file(v);
  w.scalar("tokenizer.ggml.add_space_prefix", true);
  const Tokenizer t = load(w);
  EXPECT_EQ(t.encode("ab"), reference_byte_level(v, " ab", PreTokenizer::gpt2_isolated_digits));
  for (int trial = 0; trial < 200; ++trial) {
    const std::string text = random_bytes(rng, 20);
    ASSERT_EQ(t.decode(t.encode(text)), text);
  }
}

// A SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens, '▁',
// single characters (not 'd', which must fall back to its byte), and random
// pieces over them with random scores.
struct SentencePieceVocab {
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  std::vector<float> scores;
};

SentencePieceVocab random_sentencepiece_vocab(std::mt19937& rng, const std::vector<std::string>& chars, int pieces) {
  SentencePieceVocab v;
  const auto add = [&](std::string s, int type, float score) {
    v.tokens.push_back(std::move(s));
    v.types.push_back(type);
    v.scores.push_back(score);
  };
  add("<unk>", 2, 0);
  add("<s>", 3, 0);
  add("</s>", 3, 0);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, 6, 0);
  }
  std::set<std::string> known;
  for (const std::string& c : chars) {
    add(c, 1, -10.0f);
    known.insert(c);
  }
  std::uniform_real_distribution<float> score(-9.0f, 0.0f);
  for (int i = 0; i < pieces; ++i) {
    std::string s;
    const int n = 2 + int(rng() % 3);
    for (int k = 0; k < n; ++k) s += chars[rng() % chars.size()];
    if (known.insert(s).second) add(s, 1, std::round(score(rng) * 4) / 4);  // quarter steps: ties happen
  }
  return v;
}

GgufWriter sentencepiece_file(const SentencePieceVocab& v) {
  GgufWriter w;
  w.string("tokenizer.ggml.model", "llama");
  w.strings("tokenizer.ggml.tokens", v.tokens);
  w.array("tokenizer.ggml.token_type", v.types);
  w.array("tokenizer.ggml.scores", v.scores);
  w.scalar<std::uint32_t>("tokenizer.ggml.unknown_token_id", 0);
  w.scalar<std::uint32_t>("tokenizer.ggml.bos_token_id", 1);
  w.scalar<std::uint32_t>("tokenizer.ggml.eos_token_id", 2);
  return w;
}

std::vector<TokenId> reference_sentencepiece(const SentencePieceVocab& v, std::string_view text) {
  std::map<std::string, TokenId> normal;
  for (std::size_t i = 0; i < v.tokens.size(); ++i)
    if (v.types[i] == 1) normal.emplace(v.tokens[i], TokenId(i));
  if (text.empty()) return {};
  std::string marked = kMark;
  for (char c : text) marked += c == ' ' ? kMark : std::string(1, c);
  const auto by_score = [&](const std::string& l, const std::string& r) -> std::optional<double> {
    const auto it = normal.find(l + r);
    if (it == normal.end()) return std::nullopt;
    return v.scores[std::size_t(it->second)];
  };
  std::vector<TokenId> out;
  for (const std::string& s : naive_merge(marked, by_score)) {
    if (const auto it = normal.find(s); it != normal.end()) {
      out.push_back(it->second);
      continue;
    }
    for (char c : s) out.push_back(3 + TokenId(std::uint8_t(c)));  // <0xNN> follow the three specials
  }
  return out;
}

TEST(SentencePieceTokenizer, MatchesNaiveBpeWithByteFallbackAndRoundTrips) {
  const std::vector<std::string> chars = {kMark, "a", "b", "c", "é", "日"};
  const std::vector<std::string> text_chars = {" ", "a", "b", "c", "é", "日", "d", "\n", "\xff"};
  for (unsigned seed : {9u, 10u, 11u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const SentencePieceVocab v = random_sentencepiece_vocab(rng, chars, 200);
    const Tokenizer t = load(sentencepiece_file(v));
    EXPECT_EQ(t.model(), Tokenizer::Model::sentencepiece_bpe);
    EXPECT_TRUE(t.adds_bos());  // the Llama default when the file does not say
    for (int trial = 0; trial < 300; ++trial) {
      const std::string text = random_text(rng, text_chars, 30);
      const std::vector<TokenId> ids = t.encode(text);
      ASSERT_EQ(ids, reference_sentencepiece(v, text)) << "text: '" << text << "'";
      ASSERT_EQ(t.decode(ids), text);
    }
    for (int trial = 0; trial < 300; ++trial) {
      const std::string text = random_bytes(rng, 40);
      if (text.find(kMark) != std::string::npos) continue;  // reads back as a space, by design
      ASSERT_EQ(t.decode(t.encode(text)), text);
    }
    const std::vector<TokenId> prompt = t.encode("ab", {.add_bos = true});
    EXPECT_EQ(prompt.front(), 1);
    EXPECT_EQ(t.decode(prompt), "<s> ab");  // the space stays where a control token leads
  }
}

TEST(SentencePieceTokenizer, MissingBytesBecomeTheUnknownToken) {
  std::mt19937 rng(12);
  SentencePieceVocab v = random_sentencepiece_vocab(rng, {kMark, "a"}, 5);
  v.tokens[3 + 'z'] = "<0xZZ>";  // no token for 'z' any more
  const Tokenizer t = load(sentencepiece_file(v));
  const std::vector<TokenId> ids = t.encode("az");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.back(), 0);
}

std::string load_error(GgufWriter w) {
  try {
    load(std::move(w));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Tokenizer, RefusesBrokenVocabulariesByName) {
  std::mt19937 rng(13);
  const ByteLevelVocab v = random_byte_level_vocab(rng, {"a", "b"}, 10);
  const auto expect_error = [](GgufWriter w, const std::string& piece) {
    const std::string m = load_error(std::move(w));
    EXPECT_NE(m.find(piece), std::string::npos) << "expected '" << piece << "' in: " << m;
    EXPECT_NE(m.find("tokenizer.gguf"), std::string::npos) << m;
  };
  GgufWriter bert;
  bert.string("tokenizer.ggml.model", "bert");
  expect_error(bert, "'bert' is not supported");

  ByteLevelVocab short_types = v;
  short_types.types.pop_back();
  expect_error(byte_level_file(short_types), "token_type has");

  ByteLevelVocab bad_type = v;
  bad_type.types[5] = 9;
  expect_error(byte_level_file(bad_type), "token 5 has type 9");

  ByteLevelVocab unknown_merge = v;
  unknown_merge.merges.push_back("zz qq");
  expect_error(byte_level_file(unknown_merge), "missing from the vocabulary");

  ByteLevelVocab no_space = v;
  no_space.merges.push_back("ab");
  expect_error(byte_level_file(no_space), "not two tokens");

  expect_error(byte_level_file(v, "llama-bpe"), "pre-tokenizer 'llama-bpe'");

  GgufWriter bos_outside = byte_level_file(v);
  bos_outside.scalar<std::uint32_t>("tokenizer.ggml.unknown_token_id", 1u << 20);
  expect_error(bos_outside, "unknown_token_id");

  GgufWriter no_merges;
  no_merges.string("tokenizer.ggml.model", "gpt2");
  no_merges.strings("tokenizer.ggml.tokens", v.tokens);
  expect_error(no_merges, "'tokenizer.ggml.merges'");

  GgufWriter no_scores;
  no_scores.string("tokenizer.ggml.model", "llama");
  no_scores.strings("tokenizer.ggml.tokens", {"<unk>", "a"});
  expect_error(no_scores, "'tokenizer.ggml.scores'");

  GgufWriter empty;
  empty.string("tokenizer.ggml.model", "gpt2");
  empty.strings("tokenizer.ggml.tokens", {});
  expect_error(empty, "holds 0 tokens");
}

class SmolLM2Tokenizer : public test::SmolLM2File {
 protected:
  void SetUp() override {
    test::SmolLM2File::SetUp();
    if (!IsSkipped()) tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(file()));
  }
  const Tokenizer& tok() const { return *tokenizer_; }

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
};

// Ids from the Hugging Face `tokenizers` library (0.23) given this file's
// vocabulary and merges with SmolLM2's pre-tokenizer (individual digits, then
// byte-level): an independent implementation of the same tokenizer.
TEST_F(SmolLM2Tokenizer, AgreesWithTheReferenceImplementation) {
  using V = std::vector<TokenId>;
  EXPECT_EQ(tok().encode("Hello, world!"), (V{19556, 28, 905, 17}));
  EXPECT_EQ(tok().encode("The year 2024 was  great.\n\nNew line"),
            (V{504, 713, 216, 34, 32, 34, 36, 436, 216, 1109, 30, 198, 198, 5529, 1761}));
  EXPECT_EQ(tok().encode("I'm don't"), (V{57, 5248, 1326, 982}));
  EXPECT_EQ(tok().encode("日本語のテキスト 🎉"),
            (V{23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226, 15107, 232, 227}));
  EXPECT_EQ(tok().encode("<|im_start|>user\nHi<|im_end|>", {.parse_special = true}), (V{1, 4093, 198, 26843, 2}));
  EXPECT_EQ(tok().encode("a\x1f b"), (V{81, 215, 278}));
}

TEST_F(SmolLM2Tokenizer, VocabularyAndSpecialTokens) {
  EXPECT_EQ(tok().model(), Tokenizer::Model::byte_level_bpe);
  EXPECT_EQ(tok().vocab_size(), llama_config_from_gguf(file()).vocab_size);
  ASSERT_TRUE(tok().bos() && tok().eos());
  EXPECT_EQ(tok().token_text(*tok().bos()), "<|im_start|>");
  EXPECT_EQ(tok().token_text(*tok().eos()), "<|im_end|>");
  EXPECT_EQ(tok().token_kind(*tok().eos()), TokenKind::control);
  EXPECT_FALSE(tok().adds_bos());
  const std::vector<TokenId> plain = tok().encode("<|im_end|>");
  EXPECT_GT(plain.size(), 1u);  // without parse_special it is only text
  EXPECT_EQ(tok().decode(plain), "<|im_end|>");
}

TEST_F(SmolLM2Tokenizer, RoundTripsTextItsVocabularyCanSpell) {
  std::vector<bool> spellable(256);
  for (int b = 0; b < 256; ++b) spellable[b] = tok().find(byte_to_unicode(std::uint8_t(b))).has_value();
  const std::vector<std::string> alphabet = {"a", "Z", " ", "  ", "\n", "\t", "'s", "'ll", "0", "7", ".", ",", "é",
                                             "ß", "Ж", "日本", "語", "한", "😀", "👍🏽", "🇺🇸", "\u00a0", "\u3000", "٣",
                                             "\r\n", "<|im_end|>", "\xff", "\x80", "\xe6\x97", "\x04"};
  for (unsigned seed : {14u, 15u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    for (int trial = 0; trial < 500; ++trial) {
      const std::string text = trial % 2 ? random_text(rng, alphabet, 40) : random_bytes(rng, 30);
      // Bytes the vocabulary cannot spell vanish; everything else comes back.
      std::string expected;
      for (char c : text)
        if (spellable[std::uint8_t(c)]) expected += c;
      ASSERT_EQ(tok().decode(tok().encode(text)), expected);
    }
  }
}

}  // namespace
}  // namespace dso
