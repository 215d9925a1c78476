// `dsoffload calibrate`: the channel config of a model from calibration text
// (model/calibrate.h), written in the DoubleSparse/SGLang format with the
// q_proj, k_proj and qk_proj orders; a progress bar on stderr and one JSON
// line on stdout saying what ran.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "calibration/channel_config.h"
#include "calibration/channel_order.h"
#include "cli/commands.h"
#include "cli/count_option.h"
#include "cli/model_options.h"
#include "cli/progress_bar.h"
#include "cli/thread_option.h"
#include "core/error.h"
#include "core/output_file.h"
#include "model/calibrate.h"

namespace dso::cli {

namespace {

struct CalibrateCommand {
  ModelOptions model;
  std::string text;
  std::string out;
  std::int64_t tokens = 16384;
  std::int64_t block = 2048;
};

void run_calibrate(const CalibrateCommand& c) {
  require(c.tokens >= 1, "--tokens must be at least 1, got ", c.tokens);
  require(c.block >= 1, "--block must be at least 1, got ", c.block);
  OutputFile out(c.out, "the channel config", OutputFile::Kind::document,
                 std::vector<std::string>{c.model.model, c.text});
  // Read before the model loads, so that a bad text is refused at once.
  const std::string text = read_text_file(c.text);
  const LoadedModel model = load_model(c.model);
  std::vector<std::int32_t> tokens = model.encode(text, false);
  require(!tokens.empty(), "the text '", c.text, "' holds no tokens");
  if (std::int64_t(tokens.size()) > c.tokens) tokens.resize(std::size_t(c.tokens));
  const std::int64_t block = std::min<std::int64_t>(c.block, std::int64_t(tokens.size()));
  const DecoderOptions options = decoder_options(c.model, model, Policy::dense_gpu, 1, block);

  const auto start = std::chrono::steady_clock::now();
  calibration::ChannelStatistics statistics;
  {
    ProgressBar progress("calibrate");
    const int layers = model.config().layers;
    statistics = calibrate(*model.weights, options, tokens, block, [&](std::int64_t done, std::int64_t planned) {
      progress.update(double(done), double(planned),
                      std::to_string(done / layers) + "/" + std::to_string(planned / layers) + " tokens");
    });
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.write(calibration::format_channel_config(calibration::config_from_statistics(statistics, c.out)) + '\n');
  out.commit();

  nlohmann::ordered_json j = run_fields(c.model, model, options, block);
  j["text"] = c.text;
  j["tokens"] = tokens.size();
  j["block"] = block;
  j["out"] = c.out;
  j["seconds"] = seconds;
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace

void add_calibrate(CLI::App& app) {
  auto c = std::make_shared<CalibrateCommand>();
  CLI::App* sub = app.add_subcommand(
      "calibrate",
      "Channel statistics of a model over calibration text: blocks of --block tokens run by prefill, every layer's "
      "q and k before RoPE and q.k after it measured, and the channel orders written as a DoubleSparse-compatible "
      "config (q_proj, k_proj, qk_proj; Hugging Face channel numbering).");
  sub->add_option("-m,--model", c->model.model, "a GGUF file, or a built-in shape run with dummy weights")->required();
  sub->add_option("--text", c->text, "calibration text file")->required();
  sub->add_option("--out", c->out, "the channel config to write (JSON)")->required();
  add_count(*sub, "--tokens", c->tokens, "tokens of the text to calibrate on (its start)")->capture_default_str();
  add_count(*sub, "--block", c->block, "tokens per block: each a fresh sequence of that length")
      ->capture_default_str();
  sub->add_option("--backend", c->model.backend, "cpu or cuda (default: cuda where a GPU is visible, else cpu)");
  sub->add_option("--dtype", c->model.dtype, "f16 or bf16: the engine's dtype, in which q and k after RoPE are "
                                               "measured")
      ->capture_default_str();
  add_count(*sub, "--prefill-chunk", c->model.prefill_chunk, "tokens a prefill runs through a layer at once")
      ->capture_default_str();
  add_threads_option(*sub, c->model.threads);
  add_count(*sub, "--seed", c->model.seed, "seed of dummy weights", std::uint64_t(0))->capture_default_str();
  sub->callback([c] { run_calibrate(*c); });
}

}  // namespace dso::cli
