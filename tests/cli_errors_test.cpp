// Every error a user can cause with the tool, run as a user runs it: the
// exit status is 2 (130 for Ctrl-C), stderr is exactly one line that names
// the problem, nothing reaches stdout, and nothing else reaches stderr (no
// "terminate called", no sanitizer report when the suite runs sanitized).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/device.h"
#include "model/dummy_weights.h"
#include "offload/available_memory.h"
#include "support/gguf_writer.h"
#include "support/sanitizer.h"
#include "support/smollm2.h"
#include "support/tiny_gguf.h"

extern char** environ;

namespace dso {
namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int status = -1;  // exit status, or -signal where a signal ended it
  std::string out;
  std::string err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The tool's process, with stdout and stderr going to files of `dir` so that
// neither pipe can fill and stall it; stdout goes to `stdout_path` instead
// where one is given (/dev/full), and is then not read back.
class ToolProcess {
 public:
  // `launcher` (a program and its arguments) runs the tool where given, e.g. a shell that lowers a limit first.
  ToolProcess(const std::vector<std::string>& args, const fs::path& dir, const fs::path& stdout_path = {},
              const std::vector<std::string>& launcher = {})
      : out_(stdout_path.empty() ? dir / "stdout" : stdout_path), read_out_(stdout_path.empty()), err_(dir / "stderr") {
    std::vector<std::string> words = launcher;
    words.push_back(DSO_TOOL_PATH);
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&files, STDERR_FILENO, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = posix_spawn(&pid_, words[0].c_str(), &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (e != 0) pid_ = -1;
  }
  ~ToolProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ToolProcess(const ToolProcess&) = delete;
  ToolProcess& operator=(const ToolProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits up to `limit` for the process to end; status -1000 if it did not.
  ToolRun wait(std::chrono::seconds limit) {
    ToolRun run;
    run.status = -1000;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      int raw = 0;
      const pid_t done = ::waitpid(pid_, &raw, WNOHANG);
      if (done == pid_) {
        run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -WTERMSIG(raw);
        pid_ = -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (read_out_) run.out = read_file(out_);
    run.err = read_file(err_);
    return run;
  }

  // Whether the process has a handler of its own for `signal` installed
  // (the SigCgt mask of /proc/<pid>/status).
  bool catches(int signal) const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("SigCgt:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (signal - 1)) & 1;
    return false;
  }

  // Waits up to `limit` until the process catches `signal`: sent before
  // that, it would end the tool the default way.
  bool awaits(int signal, std::chrono::seconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!catches(signal) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return catches(signal);
  }

 private:
  pid_t pid_ = -1;
  fs::path out_;
  bool read_out_;
  fs::path err_;
};

class CliErrors : public testing::Test {
 protected:
  void SetUp() override {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("dso_cli_errors_" + std::to_string(::getpid()) + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path file(const std::string& name, const std::string& text) const {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  fs::path file(const std::string& name, const std::vector<std::byte>& bytes) const {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return path;
  }

  ToolRun run(const std::vector<std::string>& args, const fs::path& stdout_path = {},
              const std::vector<std::string>& launcher = {}) const {
    ToolProcess tool(args, dir_, stdout_path, launcher);
    if (tool.pid() <= 0) return {};
    return tool.wait(std::chrono::seconds(120));
  }

  // The contract of every user error: status 2, one line naming the problem.
  void expect_user_error(const std::vector<std::string>& args, const std::vector<std::string>& names,
                         const fs::path& stdout_path = {}, const std::vector<std::string>& launcher = {}) const {
    std::string command;
    for (const std::string& a : args) command += " " + a;
    SCOPED_TRACE("dsoffload" + command);
    const ToolRun r = run(args, stdout_path, launcher);
    EXPECT_EQ(r.status, 2) << r.err;
    expect_one_line(r.err, "dsoffload: error: ");
    for (const std::string& name : names) EXPECT_NE(r.err.find(name), std::string::npos) << "lacks '" << name << "'";
    EXPECT_EQ(r.out, "") << "a refused run printed results";
  }

  // The same for a run that reports progress on stderr before it finds the
  // problem: the refusal is its last line.
  void expect_refusal_after_progress(const std::vector<std::string>& args, const std::vector<std::string>& names,
                                     const fs::path& stdout_path = {}) const {
    std::string command;
    for (const std::string& a : args) command += " " + a;
    SCOPED_TRACE("dsoffload" + command);
    const ToolRun r = run(args, stdout_path);
    EXPECT_EQ(r.status, 2) << r.err;
    ASSERT_FALSE(r.err.empty());
    const std::size_t last = r.err.rfind('\n', r.err.size() - 2);
    const std::string line = last == std::string::npos ? r.err : r.err.substr(last + 1);
    expect_one_line(line, "dsoffload: error: ");
    for (const std::string& name : names) EXPECT_NE(line.find(name), std::string::npos) << "lacks '" << name << "'";
    EXPECT_EQ(r.out, "") << "a refused run printed results";
  }

  static void expect_one_line(const std::string& err, const std::string& prefix) {
    EXPECT_EQ(err.rfind(prefix, 0), 0u) << err;
    ASSERT_FALSE(err.empty());
    EXPECT_EQ(err.find('\n'), err.size() - 1) << "not exactly one line: " << err;
    for (const char* noise : {"terminate called", "Sanitizer", "runtime error:", "what():"})
      EXPECT_EQ(err.find(noise), std::string::npos) << err;
  }

  fs::path dir_;
};

// A calibrated-looking config of 2 layers, 4 query heads, 2 KV heads, d = 16.
std::string config_text() {
  std::string json = "{";
  for (int l = 0; l < 2; ++l)
    for (const auto& [projection, heads] : {std::pair{"q_proj", 4}, std::pair{"k_proj", 2}, std::pair{"qk_proj", 4}}) {
      json += (json.size() > 1 ? ", " : "") + std::string("\"model.layers.") + std::to_string(l) + ".self_attn." +
              projection + "\": [";
      for (int h = 0; h < heads; ++h) {
        json += h ? ", [" : "[";
        for (int c = 0; c < 16; ++c) json += (c ? ", " : "") + std::to_string((c * 7 + h + l) % 16);
        json += "]";
      }
      json += "]";
    }
  return json + "}";
}

test::GgufWriter llama_file(const std::string& architecture) {
  test::GgufWriter w;
  w.string("general.architecture", architecture);
  w.scalar<std::uint32_t>("llama.block_count", 2);
  w.scalar<std::uint32_t>("llama.embedding_length", 64);
  return w;
}

TEST_F(CliErrors, ToolAcceptsTheFilesTheCasesBreak) {
  // Guards the cases below: each file is refused for what was done to it.
  const ToolRun r = run({"inspect-config", file("good.json", config_text()).string(), "--shape", "L2-Hq4-Hkv2-d16"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "{\"layers\":2,\"projections\":{\"k_proj\":[2,16],\"q_proj\":[4,16],\"qk_proj\":[4,16]}}\n");
}

TEST_F(CliErrors, MissingOrUnreadableFiles) {
  expect_user_error({"inspect-config", (dir_ / "absent.json").string()},
                    {"cannot read channel config", "absent.json", "No such file or directory"});
  expect_user_error({"inspect-config", dir_.string()}, {"cannot read channel config", "is a directory"});
  expect_user_error({"inspect-model", (dir_ / "absent.gguf").string()},
                    {"cannot open", "absent.gguf", "No such file or directory"});
  expect_user_error({"inspect-model", dir_.string()}, {"cannot open", "it is a directory, not a regular file"});
  expect_user_error({"inspect-model", file("empty.gguf", std::string()).string()}, {"empty.gguf", "is empty"});
}

TEST_F(CliErrors, MalformedChannelConfigs) {
  expect_user_error({"inspect-config", file("cut.json", config_text().substr(0, 100)).string()},
                    {"cut.json", "channel config is not JSON"});
  const std::string gap = R"({"model.layers.0.self_attn.q_proj": [[0, 1]], "model.layers.2.self_attn.q_proj": [[1, 0]]})";
  expect_user_error({"inspect-config", file("gap.json", gap).string()}, {"gap.json", "q_proj lacks layers 1"});
  expect_user_error({"inspect-config", file("repeat.json", R"({"model.layers.0.self_attn.k_proj": [[3, 1, 3]]})").string()},
                    {"repeat.json", "channel 3 repeats"});
  expect_user_error({"inspect-config", file("negative.json", R"({"model.layers.0.self_attn.k_proj": [[0, -2]]})").string()},
                    {"negative.json", "channel -2 is out of range"});
  // Was an internal error (status 3) until the fuzzer found it.
  expect_user_error({"inspect-config", file("overflow.json", R"({"model.layers.0.self_attn.k_proj": [[1e400]]})").string()},
                    {"overflow.json", "not JSON", "number overflow parsing '1e400'"});
}

TEST_F(CliErrors, ChannelConfigForAnotherModelShape) {
  const std::string config = file("config.json", config_text()).string();
  expect_user_error({"inspect-config", config, "--shape", "llama-3-8b"}, {"has 2 layers, the model has 32"});
  expect_user_error({"inspect-config", config, "--shape", "L2-Hq8-Hkv2-d16"},
                    {"q_proj lists 4 heads per layer, the model has 8 query heads"});
  expect_user_error({"inspect-config", config, "--shape", "L2-Hq4-Hkv4-d16"},
                    {"k_proj lists 2 heads per layer, the model has 4 KV heads"});
  expect_user_error({"inspect-config", config, "--shape", "L2-Hq4-Hkv2-d8"}, {"16 channels per head, more than head_dim 8"});
}

TEST_F(CliErrors, MalformedModelFiles) {
  expect_user_error({"inspect-model", file("text.gguf", std::string("not a model\n")).string()},
                    {"text.gguf", "not a GGUF file"});
  test::GgufWriter w = llama_file("llama");
  const std::vector<std::byte> whole = w.build();
  const std::vector<std::byte> cut(whole.begin(), whole.begin() + std::ptrdiff_t(w.at("kv1.value") + 2));
  expect_user_error({"inspect-model", file("cut.gguf", cut).string()},
                    {"cut.gguf", "truncated", "llama.block_count", "needs 4 bytes, only 2 remain"});
  expect_user_error({"inspect-model", file("whole.gguf", whole).string()},
                    {"whole.gguf", "lacks the required key 'llama.feed_forward_length'"});
  expect_user_error({"inspect-model", file("gpt2.gguf", llama_file("gpt2").build()).string()},
                    {"general.architecture is 'gpt2', only 'llama' is supported"});
}

TEST_F(CliErrors, UnknownNames) {
  expect_user_error({"bench", "--policy", "ds_offlaod"}, {"unknown policy 'ds_offlaod'", "ds_offload_sync"});
  expect_user_error({"bench", "--shape", "llama-7b"}, {"unknown shape 'llama-7b'", "llama-2-7b"});
  expect_user_error({"bench", "--shape", "L4-Hq6-Hkv4-d64"}, {"6", "4"});
  expect_user_error({"bench", "--backend", "gpu"}, {"unknown backend 'gpu'", "cpu or cuda"});
  expect_user_error({"bench", "--dtype", "f32"}, {"unknown dtype 'f32'"});
  expect_user_error({"inspect-config", file("config.json", config_text()).string(), "--shape", "llama3"},
                    {"unknown shape 'llama3'"});
}

TEST_F(CliErrors, BadCommandLines) {
  expect_user_error({}, {"a subcommand is required (choose from ", "inspect-config", "bench"});
  expect_user_error({"benchmark"}, {"unknown subcommand 'benchmark' (choose from ", "bench"});
  expect_user_error({"bench", "--contxt", "100"}, {"--contxt"});
  expect_user_error({"bench", "--context", "lots"}, {"--context", "lots"});
  expect_user_error({"bench", "--k", "8", "--k-fraction", "0.1"}, {"--k", "excludes"});
  expect_user_error({"inspect-config"}, {"FILE is required"});
  expect_user_error({"bench", "--batch", "0"}, {"--batch: must be at least 1, got 0"});
  expect_user_error({"bench", "--warmup", "-1"}, {"--warmup: must not be negative, got -1"});
  expect_user_error({"bench", "--k-fraction", "2"}, {"k_fraction must be in [0, 1], got 2"});
  expect_user_error({"bench", "--r", "1000"}, {"r=1000"});
  expect_user_error({"bench", "--threads", "-2"}, {"--threads", "must be at least 1 (or 0: the cores available), got -2"});
  expect_user_error({"perplexity", "--model", "smollm2-135m", "--text", "t.txt", "--threads", "-1"},
                    {"--threads", "got -1"});
}

// Every option that counts something refuses what is no count, instead of
// reading '' as 0 (and so the default) or wrapping -1 into a huge seed.
TEST_F(CliErrors, CountOptionsRefuseWhatIsNoCount) {
  expect_user_error({"bench", "--r", "0"}, {"--r: must be at least 1, got 0"});
  expect_user_error({"bench", "--r", "-1"}, {"--r: must be at least 1, got -1"});
  expect_user_error({"bench", "--r", ""}, {"--r: '' is not a whole number"});
  expect_user_error({"bench", "--k", "0"}, {"--k: must be at least 1, got 0"});
  expect_user_error({"bench", "--context", ""}, {"--context: '' is not a token count"});
  expect_user_error({"bench", "--batch", ""}, {"--batch: '' is not a whole number"});
  expect_user_error({"bench", "--seed", "-1"}, {"--seed: '-1' is not a whole number"});
  expect_user_error({"bench", "--steps", "99999999999"}, {"--steps: 99999999999 is past the largest value it takes, 2147483647"});
  expect_user_error({"bench", "--sink", "1.5"}, {"--sink: '1.5' is not a whole number"});
  expect_user_error({"soak", "--context", ""}, {"--context: '' is not a token count"});
  expect_user_error({"soak", "--sample-every", "0"}, {"--sample-every: must be at least 1, got 0"});
  const std::string text = file("text.txt", std::string("some text")).string();
  expect_user_error({"generate", "--model", "llama-2-7b", "--prompt", "hi", "--max-new", "0"},
                    {"--max-new: must be at least 1, got 0"});
  expect_user_error({"generate", "--model", "llama-2-7b", "--prompt", "hi", "--r", "0"}, {"--r: must be at least 1, got 0"});
  expect_user_error({"perplexity", "--model", "llama-2-7b", "--text", text, "--context", ""},
                    {"--context: '' is not a token count"});
  expect_user_error({"perplexity", "--model", "llama-2-7b", "--text", text, "--context", "0"},
                    {"--context: context must be at least 1 token, got '0'"});
  expect_user_error({"perplexity", "--model", "llama-2-7b", "--text", text, "--context", "8", "--max-windows", "-1"},
                    {"--max-windows: must not be negative, got -1"});
  expect_user_error({"eval", "--model", "llama-2-7b", "--text", text, "--windows", "0"}, {"--windows: must be at least 1, got 0"});
  expect_user_error({"eval", "--model", "llama-2-7b", "--text", text, "--budgets", "0"}, {"--budgets: must be at least 1, got 0"});
  expect_user_error({"passkey", "--model", "llama-2-7b", "--trials", "0"}, {"--trials: must be at least 1, got 0"});
  expect_user_error({"passkey", "--model", "llama-2-7b", "--contexts", "-5"}, {"--contexts: '-5' is not a token count"});
  expect_user_error({"calibrate", "--model", "llama-2-7b", "--text", text, "--out", "x.json", "--block", "0"},
                    {"--block: must be at least 1, got 0"});
  expect_user_error({"spec-accuracy", "--model", "llama-2-7b", "--text", text, "--steps", ""},
                    {"--steps: '' is not a whole number"});
}

// A tiny model the tool can run (a byte-level tokenizer of its vocabulary), its tensors passed through `edit`.
std::vector<std::byte> tool_gguf(const std::function<void(const std::string&, std::vector<float>&)>& edit = {},
                                 int tokens = 258, const LlamaConfig* metadata = nullptr) {
  const auto weights = dummy_weights(test::tiny_tool_config(), 51);
  test::TinyGguf how;
  how.metadata = metadata;
  how.tokenizer_tokens = tokens;
  how.edit = edit;
  return test::tiny_gguf_writer(*weights, how).build();
}

TEST_F(CliErrors, ToolRunsTheTinyModelTheModelCasesBreak) {
  const ToolRun r = run({"generate", "--model", file("tiny.gguf", tool_gguf()).string(), "--prompt", "ab",
                         "--max-new", "2", "--backend", "cpu", "--raw", "--ignore-eos"});
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(CliErrors, CountsWhoseSumOrProductOverflows) {
  const std::string model = file("tiny.gguf", tool_gguf()).string();
  const std::string text = file("text.txt", std::string(200, 'a')).string();
  expect_user_error({"generate", "--model", model, "--prompt", "ab", "--backend", "cpu", "--max-new",
                     "9223372036854775807"},
                    {"the prompt plus --max-new overflows 64 bits"});
  expect_user_error({"eval", "--model", model, "--text", text, "--backend", "cpu", "--families", "sparq", "--context",
                     "16", "--score-tokens", "4", "--windows", "9223372036854775807"},
                    {"--windows x --context overflows 64 bits"});
  // The room an answer needs is compared without a sum that could wrap.
  expect_user_error({"passkey", "--model", model, "--backend", "cpu", "--contexts", "128", "--max-new",
                     "9223372036854775807"},
                    {"context 128 must leave room for --max-new 9223372036854775807"});
}

TEST_F(CliErrors, DamagedModelsAreRefusedAtLoad) {
  const auto poison = [](const std::string& tensor, float value) {
    return [tensor, value](const std::string& name, std::vector<float>& values) {
      if (name == tensor) values[3] = value;
    };
  };
  expect_user_error({"generate", "--model", file("nan.gguf", tool_gguf(poison("blk.1.ffn_up.weight", NAN))).string(),
                     "--prompt", "ab", "--backend", "cpu"},
                    {"nan.gguf", "tensor 'blk.1.ffn_up.weight' holds NaN or infinity at element 3"});
  expect_user_error({"perplexity", "--model", file("inf.gguf", tool_gguf(poison("output_norm.weight", INFINITY))).string(),
                     "--text", file("text.txt", std::string(40, 'a')).string(), "--context", "16", "--backend", "cpu"},
                    {"inf.gguf", "tensor 'output_norm.weight' holds NaN or infinity at element 3"});
  LlamaConfig one_layer = test::tiny_tool_config();
  one_layer.layers = 1;
  expect_user_error({"generate", "--model", file("shallow.gguf", tool_gguf({}, 258, &one_layer)).string(), "--prompt",
                     "ab", "--backend", "cpu"},
                    {"shallow.gguf", "tensor 'blk.1.", "belongs to layer 1, but llama.block_count says the model has 1"});
  expect_user_error({"inspect-model", file("vocab.gguf", tool_gguf({}, 257)).string()},
                    {"vocab.gguf", "llama.vocab_size is 258, but tokenizer.ggml.tokens lists 257 tokens"});
}

// Weights that are finite but so large that the model's numbers overflow:
// the logits are NaN or infinite, and no command prints a result made of them.
TEST_F(CliErrors, NonFiniteLogitsAreReportedNotPrinted) {
  const std::string model = file("huge.gguf", tool_gguf([](const std::string& name, std::vector<float>& values) {
                                   if (name == "output_norm.weight") std::fill(values.begin(), values.end(), 3e38f);
                                 })).string();
  const std::string text = file("text.txt", std::string(40, 'a')).string();
  expect_user_error({"generate", "--model", model, "--prompt", "ab", "--backend", "cpu", "--raw"},
                    {"of the model's logits are NaN or infinite at new token 1"});
  expect_refusal_after_progress({"perplexity", "--model", model, "--text", text, "--context", "16", "--backend", "cpu"},
                                {"the log-likelihood of policy dense_gpu is", "NaN or infinite, so there is no perplexity"});
  expect_refusal_after_progress({"eval", "--model", model, "--text", text, "--backend", "cpu", "--families", "sparq",
                                 "--context", "16", "--windows", "1", "--score-tokens", "4"},
                                {"the log-likelihood of the dense setting is"});
}

// 6 GB allocated for 43 s before the refusal, once: the shape's K/V cache is
// checked before any table that grows with the shape is made.
TEST_F(CliErrors, AbsurdShapeIsRefusedBeforeAllocating) {
  const auto start = std::chrono::steady_clock::now();
  expect_user_error({"bench", "--shape", "L99999999-Hq8-Hkv2-d64"}, {"the K/V cache alone needs", "available"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// Under `ulimit -v` the run is refused, naming that limit, where it used to
// pass the check (MemAvailable) and then fail to allocate.
TEST_F(CliErrors, AddressSpaceLimitRefusesARunNamingIt) {
  if (test::kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer's shadow memory leaves no room under an address-space limit";
  constexpr std::int64_t limit_kib = std::int64_t(2) << 20;  // 2 GiB
  if (available_host_memory().bytes < (std::int64_t(4) << 30))
    GTEST_SKIP() << "needs 4 GiB available, so that only the address-space limit refuses";
  const std::vector<std::string> launcher{"/bin/sh", "-c", "ulimit -v " + std::to_string(limit_kib) + " && exec \"$0\" \"$@\""};
  expect_user_error({"bench", "--backend", "cpu", "--shape", "smollm2-135m", "--context", "64K", "--policy", "ds_offload"},
                    {"of host memory", "left under the address-space limit (RLIMIT_AS, ulimit -v)"}, {}, launcher);
}

TEST_F(CliErrors, ContextPastCapacity) {
  expect_user_error({"bench", "--context", "3000000000"},
                    {"context 3000000000", "past the largest capacity of 2147483647 tokens"});
  // Would overflow a 64-bit sum of context and steps.
  expect_user_error({"bench", "--context", "9223372036854775807"}, {"past the largest capacity"});
}

// Refused before the model is opened: the file named need not exist.
TEST_F(CliErrors, SamplingOptionsAndTokenCountsOfModelCommands) {
  expect_user_error({"generate", "-m", "absent.gguf", "-p", "hi", "--temperature", "-1"},
                    {"--temperature must be 0 (greedy) or more, got -1"});
  expect_user_error({"generate", "-m", "absent.gguf", "-p", "hi", "--top-p", "0"}, {"--top-p must be in (0, 1], got 0"});
  expect_user_error({"perplexity", "-m", "absent.gguf", "--text", "absent.txt", "-c", "2X"},
                    {"--context: '2X' is not a token count (e.g. 4096, 16K, 1M)"});
}

TEST_F(CliErrors, RunLargerThanHostMemory) {
  // 8 TiB of K/V: no machine this runs on has it.
  expect_user_error({"bench", "--shape", "llama-2-7b", "--context", "262144", "--batch", "64"},
                    {"needs 8.3 TiB of host memory", "8.3 TiB for the engine", "available"});
}

TEST_F(CliErrors, GpuBackendWithoutTheGpuItNeeds) {
  if (!gpu_available()) {
    expect_user_error({"bench", "--backend", "cuda"}, {"the cuda backend needs a GPU and none is visible"});
    return;
  }
  // dense_gpu keeps the K/V cache on the GPU: 2 TiB of it here.
  expect_user_error({"bench", "--backend", "cuda", "--policy", "dense_gpu", "--shape", "llama-2-7b", "--context",
                     "1048576", "--batch", "4"},
                    {"of GPU memory", "free on"});
}

TEST_F(CliErrors, CtrlCStopsABenchmarkAtAStepBoundary) {
  // Long enough never to finish by itself, small enough to fit anywhere.
  ToolProcess tool({"bench", "--shape", "small", "--context", "256", "--warmup", "0", "--steps", "100000", "--policy",
                    "ds_offload,flexgen"},
                   dir_);
  ASSERT_GT(tool.pid(), 0);
  ASSERT_TRUE(tool.awaits(SIGINT, std::chrono::seconds(60))) << "the tool never installed its SIGINT handler";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(tool.pid(), SIGINT), 0);
  const ToolRun r = tool.wait(std::chrono::seconds(60));
  EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(30)) << "it did not stop at a step boundary";
  EXPECT_EQ(r.status, 130) << r.err;
  // Progress lines of the cache fill come first; the report is the last line.
  const std::size_t last = r.err.rfind('\n', r.err.size() - 2);
  expect_one_line(last == std::string::npos ? r.err : r.err.substr(last + 1), "dsoffload: interrupted at ");
  const std::regex where(
      "dsoffload: interrupted at (step [0-9]+ of 100000 \\(0 warm-up\\)|the cache fill) of policy ds_offload "
      "\\(1 of 2\\).*\n");
  EXPECT_TRUE(std::regex_match(r.err.substr(last == std::string::npos ? 0 : last + 1), where)) << r.err;
  EXPECT_EQ(r.out, "");
}

// The prefill through a real model's layers stops at the next chunk, as the
// synthetic fill does, instead of running to its end first.
TEST_F(CliErrors, CtrlCStopsTheModelPrefillOfABenchmark) {
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << test::smollm2_path() << " is absent (scripts/get_model.sh)";
  ToolProcess tool({"bench", "--model", test::smollm2_path(), "--backend", "cpu", "--context", "8192", "--batch", "2",
                    "--policy", "ds_offload"},
                   dir_);
  ASSERT_GT(tool.pid(), 0);
  ASSERT_TRUE(tool.awaits(SIGINT, std::chrono::seconds(60))) << "the tool never installed its SIGINT handler";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the model loaded, its prefill under way
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(tool.pid(), SIGINT), 0);
  const ToolRun r = tool.wait(std::chrono::seconds(120));
  EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(5)) << "the prefill ran on";
  EXPECT_EQ(r.status, 130) << r.err;
  const std::size_t last = r.err.rfind('\n', r.err.size() - 2);
  const std::string line = last == std::string::npos ? r.err : r.err.substr(last + 1);
  expect_one_line(line, "dsoffload: interrupted at ");
  EXPECT_TRUE(std::regex_match(line, std::regex("dsoffload: interrupted at the prefill of sequence 1: layer [0-9]+ of "
                                                "30, token [0-9]+ of 8192\n")))
      << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(CliErrors, InputsThatAreNotRegularFilesAreRefusedWithoutBlocking) {
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Each of these waited forever for a writer to the FIFO.
  expect_user_error({"inspect-model", fifo.string()}, {"cannot open", "it is a FIFO, not a regular file"});
  expect_user_error({"inspect-config", fifo.string()}, {"cannot read channel config", "it is a FIFO, not a regular file"});
  expect_user_error({"perplexity", "--model", "smollm2-135m", "--text", fifo.string(), "--context", "64"},
                    {"cannot open the text file", "it is a FIFO"});
  // Read until memory ran out, and only after the model had loaded.
  expect_user_error({"perplexity", "--model", "smollm2-135m", "--text", "/dev/zero", "--context", "64"},
                    {"cannot open the text file '/dev/zero': it is a character device, not a regular file"});
  const fs::path big = file("big.txt", "x");
  fs::resize_file(big, std::uintmax_t(1) << 30);  // sparse
  expect_user_error({"calibrate", "--model", "smollm2-135m", "--text", big.string(), "--out", (dir_ / "c.json").string()},
                    {"big.txt", "holds 1073741824 bytes, more than the 268435456 bytes a text file may have"});
}

TEST_F(CliErrors, OutputsThatCannotBeWrittenAreRefusedBeforeAnyWork) {
  const std::string text = file("text.txt", "Some text.").string();
  const std::string model = file("model.gguf", "weights").string();
  // The model named does not exist: the output must be refused before it is looked for.
  expect_user_error({"calibrate", "--model", "no-such-model", "--text", text, "--out", (dir_ / "nodir" / "c.json").string()},
                    {"cannot write the channel config", "nodir", "its folder", "No such file or directory"});
  expect_user_error({"calibrate", "--model", "no-such-model", "--text", text, "--out", "/proc/c.json"},
                    {"cannot write the channel config '/proc/c.json': cannot create a file in '/proc'"});
  expect_user_error({"eval", "--model", "no-such-model", "--text", text, "--markdown", dir_.string()},
                    {"cannot write the --markdown file", "it is a directory"});
  expect_user_error({"soak", "--shape", "smollm2-135m", "--json", (dir_ / "nodir" / "s.jsonl").string()},
                    {"cannot write the --json file", "its folder"});
  expect_user_error({"passkey", "--model", "no-such-model", "--markdown", (dir_ / "nodir" / "p.md").string()},
                    {"cannot write the --markdown file", "its folder"});
}

TEST_F(CliErrors, AnOutputThatIsAnInputIsRefusedAndTheInputKept) {
  const std::string text = file("text.txt", "Some text.").string();
  const std::string model = file("model.gguf", "weights").string();
  // Another spelling of the same file: files are compared, not names.
  expect_user_error({"calibrate", "--model", "smollm2-135m", "--text", text, "--out", (dir_ / "." / "text.txt").string()},
                    {"cannot write the channel config", "it is the input '" + text + "' of this run"});
  expect_user_error({"eval", "--model", model, "--text", text, "--json", model}, {"it is the input '" + model + "'"});
  expect_user_error({"eval", "--model", model, "--text", text, "--channels", text, "--markdown", text},
                    {"it is the input '" + text + "'"});
  expect_user_error({"soak", "--model", model, "--json", model}, {"it is the input '" + model + "'"});
  expect_user_error({"eval", "--model", "no-such-model", "--text", text, "--json", (dir_ / "r").string(), "--markdown",
                     (dir_ / "." / "r").string()},
                    {"the --json file and the --markdown file name the same file"});
  EXPECT_EQ(read_file(text), "Some text.");
  EXPECT_EQ(read_file(model), "weights");
}

TEST_F(CliErrors, OutputLostToAFullDiskIsAnError) {
  expect_user_error({"inspect-config", file("config.json", config_text()).string()},
                    {"cannot write to standard output: No space left on device"}, "/dev/full");
  expect_refusal_after_progress({"soak", "--backend", "cpu", "--shape", "smollm2-135m", "--context", "32", "--steps", "2",
                               "--sample-every", "1", "--json", "/dev/full"},
                              {"cannot write the --json file '/dev/full': No space left on device"}, dir_ / "soak.out");
  if (!fs::exists(test::smollm2_path())) GTEST_SKIP() << test::smollm2_path() << " is absent: the rest needs it";
  expect_user_error({"generate", "--model", test::smollm2_path(), "--prompt", "Hi", "--max-new", "2", "--backend", "cpu"},
                    {"cannot write to standard output: No space left on device"}, "/dev/full");
  std::string words;
  for (int i = 0; i < 200; ++i) words += "the river ran past the mill. ";
  expect_refusal_after_progress({"eval", "--model", test::smollm2_path(), "--text", file("words.txt", words).string(),
                               "--context", "64", "--windows", "1", "--score-tokens", "2", "--families", "random",
                               "--budgets", "4", "--channel-divisors", "16", "--backend", "cpu", "--json", "/dev/full"},
                              {"cannot write the --json file '/dev/full': No space left on device"}, dir_ / "eval.out");
}

TEST_F(CliErrors, ChannelConfigsTooDeepOrTooLarge) {
  // A channel entry nested 100000 deep overflowed the stack while the error message was made.
  const std::string deep = R"({"model.layers.0.self_attn.k_proj": [[)" + std::string(100000, '[') +
                           std::string(100000, ']') + "]]}";
  expect_user_error({"inspect-config", file("deep.json", deep).string()},
                    {"deep.json", "channel config nests deeper than 16 levels"});
  const fs::path big = file("big.json", "{");
  fs::resize_file(big, std::uintmax_t(1) << 30);  // sparse
  expect_user_error({"inspect-config", big.string()},
                    {"big.json", "holds 1073741824 bytes, more than the 67108864 bytes a channel config may have"});
  // A list where a channel belongs is named, not printed whole.
  std::string long_list = "[1";
  for (int i = 0; i < 5000; ++i) long_list += ", 1";
  expect_user_error({"inspect-config", file("nested.json", R"({"model.layers.0.self_attn.k_proj": [[)" + long_list +
                                                              "]]]}").string()},
                    {"nested.json", "entry 0 is a list, not a channel index"});
}

TEST_F(CliErrors, MessagesAreCappedAndPrintable) {
  const std::string hostile = std::string("gpt\x1b[2J\x07") + '\0' + "after the NUL";
  const ToolRun r = run({"inspect-model", file("hostile.gguf", llama_file(hostile).build()).string()});
  EXPECT_EQ(r.status, 2);
  expect_one_line(r.err, "dsoffload: error: ");
  EXPECT_NE(r.err.find("general.architecture is 'gpt\\x1b[2J\\x07\\x00after the NUL'"), std::string::npos) << r.err;
  for (char c : r.err.substr(0, r.err.size() - 1))
    EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "a control character reached the terminal";
  const ToolRun long_run = run({"inspect-model", file("long.gguf", llama_file(std::string(100000, 'a')).build()).string()});
  EXPECT_EQ(long_run.status, 2);
  expect_one_line(long_run.err, "dsoffload: error: ");
  EXPECT_LT(long_run.err.size(), 500u) << long_run.err;
  EXPECT_NE(long_run.err.find(" more bytes cut)"), std::string::npos) << long_run.err;
}

}  // namespace
}  // namespace dso
