// `dsoffload passkey`: passkey retrieval (model/passkey_prompt.h), dense
// against sparse decoding. For every context and depth, each trial's prompt
// is prefilled once, densely; then every setting decodes the answer greedily
// from that same prefix, and scores an exact match of the answer's first
// number with the key. One JSON object per line and answer on stdout, a
// Markdown table with --markdown (else on stderr).
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "calibration/channel_config.h"
#include "calibration/label_selection.h"
#include "cli/bench_options.h"
#include "cli/commands.h"
#include "cli/count_option.h"
#include "cli/model_options.h"
#include "cli/progress_bar.h"
#include "cli/thread_option.h"
#include "cli/run_info.h"
#include "core/error.h"
#include "core/output_file.h"
#include "model/decoder.h"
#include "model/passkey_prompt.h"
#include "model/prefix_recorder.h"

namespace dso::cli {

namespace {

using Json = nlohmann::ordered_json;

struct PasskeyCommand {
  ModelOptions model;
  std::vector<std::int64_t> contexts{1024, 2048, 4096};
  std::vector<double> depths{0.1, 0.5, 0.9};
  int trials = 2;
  std::vector<int> budgets{16, 8};
  std::vector<int> channel_divisors{16};
  std::int64_t max_new = 12;
  std::uint64_t key_seed = 1;
  std::string markdown_out;
};

struct Setting {
  std::string name;  // "dense" or "ds_gpu N/16 d/16"
  int k_divisor = 0;
  int r_divisor = 0;
  std::unique_ptr<Decoder> decoder;
};

// Greedy decoding from the prompt's last token until EOS, the end of the
// turn, or max_new tokens; the answer's text.
std::string answer(Decoder& decoder, const LoadedModel& m, std::int32_t last, std::int64_t max_new) {
  std::vector<std::int32_t> next{last};
  std::string text;
  const std::optional<std::int32_t> eos = m.tokenizer ? m.tokenizer->eos() : std::nullopt;
  const std::optional<std::int32_t> end_of_turn = m.tokenizer ? m.tokenizer->find("<|im_end|>") : std::nullopt;
  for (std::int64_t i = 0; i < max_new; ++i) {
    decoder.decode(next);
    next = decoder.greedy_tokens();
    if (next[0] == eos || next[0] == end_of_turn) break;
    text += m.piece(next[0]);
  }
  return text;
}

std::string cell(int right, int total) { return std::to_string(right) + "/" + std::to_string(total); }

void run_passkey(const PasskeyCommand& c) {
  require(c.trials >= 1, "--trials must be at least 1, got ", c.trials);
  require(c.max_new >= 1, "--max-new must be at least 1, got ", c.max_new);
  std::optional<OutputFile> markdown_file;
  if (!c.markdown_out.empty())
    markdown_file.emplace(c.markdown_out, "the --markdown file", OutputFile::Kind::document,
                          std::vector<std::string>{c.model.model, c.model.channels});
  const LoadedModel model = load_model(c.model);
  require(model.tokenizer.has_value(), "passkey needs a model with a tokenizer (a GGUF file), not '", c.model.model,
          "'");
  const bool chatml = model.has_chatml();
  const std::string before = chatml ? "<|im_start|>user\n" : "";
  const std::string after = chatml ? "<|im_end|>\n<|im_start|>assistant\n" : "\n";
  const auto count = [&](const std::string& text) { return std::int64_t(model.encode(text, chatml).size()); };
  for (std::int64_t context : c.contexts)
    require(context - 1 > c.max_new && context <= model.config().context_length, "context ", context,
            " must leave room for --max-new ", c.max_new, " and be at most the model's ",
            model.config().context_length);

  Json header;
  put_run_info(header);
  header["model"] = model.name;
  header["weights"] = model.dummy() ? "dummy" : "real";
  header["chat_template"] = chatml ? "ChatML" : "none";
  header["channel_config"] = c.model.channels.empty() ? Json(nullptr) : Json(c.model.channels);
  header["stat"] = c.model.statistic;
  header["sink"] = c.model.sink;
  header["recent"] = c.model.recent;

  // results[setting][context] = (right, total), and per depth.
  std::map<std::string, std::map<std::int64_t, std::pair<int, int>>> totals;
  std::map<std::string, std::map<std::int64_t, std::map<double, std::pair<int, int>>>> by_depth;
  std::vector<std::string> names;
  std::mt19937_64 keys(c.key_seed);
  for (std::int64_t context : c.contexts) {
    PrefixRecorder recorder(model.config());
    std::vector<Setting> settings;
    DecoderOptions dense = decoder_options(c.model, model, Policy::dense_gpu, 1, context);
    dense.prefill_observer = recorder.observer();
    settings.push_back({"dense", 0, 0, nullptr});
    for (int k_div : c.budgets)
      for (int r_div : c.channel_divisors) {
        require(k_div >= 1 && r_div >= 1, "budget and channel divisors must be at least 1");
        settings.push_back(
            {"ds_gpu N/" + std::to_string(k_div) + " d/" + std::to_string(r_div), k_div, r_div, nullptr});
      }
    for (Setting& s : settings) {
      DecoderOptions o = dense;
      if (s.k_divisor > 0) {
        ModelOptions with_r = c.model;
        with_r.r = std::max(1, model.config().head_dim / s.r_divisor);
        o = decoder_options(with_r, model, Policy::ds_gpu, 1, context);
        o.engine.budget = {std::max<std::int64_t>(1, context / s.k_divisor), c.model.sink, c.model.recent};
        o.engine.k_fraction = 0;
      }
      Engine::check_fits(o.engine);
      s.decoder = make_decoder(*model.weights, o);
      if (std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
    }
    if (header.find("device") == header.end()) {
      header["device"] = run_fields(c.model, model, dense, context)["device"];
      header["threads"] = dense.threads;
    }

    for (double depth : c.depths)
      for (int trial = 0; trial < c.trials; ++trial) {
        const std::string key = std::to_string(10000 + keys() % 90000);
        const PasskeyPrompt prompt = passkey_prompt({key, depth, context - c.max_new, before, after}, count);
        const std::vector<std::int32_t> tokens = model.encode(prompt.text, chatml);
        const std::span<const std::int32_t> prefix = std::span(tokens).first(tokens.size() - 1);
        CachedPrefix kept;
        {
          ProgressBar bar("passkey " + std::to_string(context) + " depth " + std::to_string(int(depth * 100)) + "%");
          bar.update(0, 1, "prefill of " + std::to_string(prefix.size()) + " tokens");
          Decoder& d = *settings[0].decoder;
          d.reset(1);
          recorder.keep(0, kept, std::int64_t(prefix.size()));
          d.prefill(0, prefix);
          bar.update(1, 1, "prefilled");
        }
        for (Setting& s : settings) {
          if (s.k_divisor > 0) {
            s.decoder->reset(1);
            s.decoder->restore_prefix(0, kept);
          }
          const std::string text = answer(*s.decoder, model, tokens.back(), c.max_new);
          const bool right = first_number(text) == key;
          auto& t = totals[s.name][context];
          t.first += right;
          t.second += 1;
          auto& b = by_depth[s.name][context][depth];
          b.first += right;
          b.second += 1;
          Json j = header;
          j["setting"] = s.name;
          j["policy"] = s.k_divisor > 0 ? "ds_gpu" : "dense_gpu";
          j["k"] = s.k_divisor > 0 ? Json(std::max<std::int64_t>(1, context / s.k_divisor)) : Json(nullptr);
          j["r"] = s.k_divisor > 0 ? Json(s.decoder->engine_config().channels.r) : Json(nullptr);
          j["context"] = context;
          j["prompt_tokens"] = tokens.size();
          j["depth"] = depth;
          j["key_depth"] = double(prompt.sentences_before) / double(std::max<std::int64_t>(1, prompt.filler_sentences));
          j["trial"] = trial;
          j["key"] = key;
          j["answer"] = text;
          j["correct"] = right;
          std::printf("%s\n", j.dump().c_str());
          flush_stdout();
        }
      }
  }

  std::string md = "# Passkey retrieval: " + model.name + "\n\n";
  for (const auto& [key, value] : header.items())
    md += "- " + key + ": " + (value.is_string() ? value.get<std::string>() : value.dump()) + "\n";
  md += "- trials per depth: " + std::to_string(c.trials) + "; scoring: the answer's first number equals the key\n\n";
  md += "| setting |";
  for (std::int64_t context : c.contexts) md += " " + std::to_string(context) + " |";
  md += "\n|---|";
  for (std::size_t i = 0; i < c.contexts.size(); ++i) md += "---|";
  md += "\n";
  for (const std::string& name : names) {
    md += "| " + name + " |";
    for (std::int64_t context : c.contexts) {
      const auto& t = totals[name][context];
      std::string detail;
      for (double depth : c.depths) {
        const auto& b = by_depth[name][context][depth];
        detail += (detail.empty() ? "" : ", ") + std::to_string(int(depth * 100)) + "%: " + cell(b.first, b.second);
      }
      md += " " + cell(t.first, t.second) + " (" + detail + ") |";
    }
    md += "\n";
  }
  if (!markdown_file) {
    std::fprintf(stderr, "%s", md.c_str());
    return;
  }
  markdown_file->write(md);
  markdown_file->commit();
}

}  // namespace

void add_passkey(CLI::App& app) {
  auto c = std::make_shared<PasskeyCommand>();
  CLI::App* sub = app.add_subcommand(
      "passkey",
      "Passkey retrieval: a 5-digit key hidden at --depths of repetitive filler, asked for at the end (chat template "
      "where the model has one), answered greedily by dense decoding and by ds_gpu at k = context/x for each of "
      "--budgets and r = head_dim/x for each of --channel-divisors, all from one dense prefill of each prompt. Exact match of the answer's first number.");
  sub->add_option("-m,--model", c->model.model, "a GGUF file with its tokenizer")->required();
  sub->add_option("--channels", c->model.channels,
                  "channel config from `dsoffload calibrate` (without one: channels 0..r-1)");
  sub->add_option("--stat", c->model.statistic, "statistic of the channel config: q, k or qk")
      ->capture_default_str();
  add_count(*sub, "--sink", c->model.sink, "first tokens always attended by ds_gpu", std::int64_t(0))
      ->capture_default_str();
  add_count(*sub, "--recent", c->model.recent, "newest tokens always attended by ds_gpu", std::int64_t(0))
      ->capture_default_str();
  sub->add_option("--backend", c->model.backend, "cpu or cuda (default: cuda where a GPU is visible, else cpu)");
  sub->add_option("--dtype", c->model.dtype, "f16 or bf16")->capture_default_str();
  add_count(*sub, "--prefill-chunk", c->model.prefill_chunk, "tokens a prefill runs through a layer at once")
      ->capture_default_str();
  add_threads_option(*sub, c->model.threads);
  takes_token_count(add_count(*sub, "--contexts", c->contexts, "prompt sizes in tokens (the answer's room included)"))
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--depths", c->depths, "where the key sits among the filler, in [0, 1]")
      ->delimiter(',')
      ->capture_default_str();
  add_count(*sub, "--trials", c->trials, "keys per context and depth")->capture_default_str();
  add_count(*sub, "--budgets", c->budgets, "ds_gpu token budgets as divisors of the context: k = context / x")
      ->delimiter(',')
      ->capture_default_str();
  add_count(*sub, "--channel-divisors", c->channel_divisors, "label channels as divisors of head_dim: r = d / x")
      ->delimiter(',')
      ->capture_default_str();
  add_count(*sub, "-n,--max-new", c->max_new, "most tokens of each answer")->capture_default_str();
  add_count(*sub, "--key-seed", c->key_seed, "seed of the keys", std::uint64_t(0))->capture_default_str();
  sub->add_option("--markdown", c->markdown_out, "write the Markdown table to this file");
  sub->callback([c] { run_passkey(*c); });
}

}  // namespace dso::cli
