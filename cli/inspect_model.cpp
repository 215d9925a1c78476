// dsoffload inspect-model FILE: the model a GGUF file holds, as one JSON
// object on stdout, e.g.
//   {"name":"SmolLM2 135M","layers":30,"q_heads":9,"kv_heads":3,"head_dim":64,...,
//    "tokenizer":"byte_level_bpe","vocab_size":49152,"tensors":272}
// It reads everything a run would read before its first step (directory,
// hyper-parameters, tokenizer), so a bad file is refused here in a second.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "core/output_file.h"
#include "model/gguf.h"
#include "model/llama_config.h"
#include "model/tokenizer.h"

namespace dso::cli {

void add_inspect_model(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect-model", "Print the shape and tokenizer of a GGUF model file");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "Model file (GGUF, Llama architecture)")->required();
  cmd->callback([file] {
    const GgufFile gguf = GgufFile::open(*file);
    const LlamaConfig c = llama_config_from_gguf(gguf);
    const Tokenizer tokenizer = Tokenizer::from_gguf(gguf);
    nlohmann::ordered_json out;
    out["name"] = c.name;
    out["layers"] = c.layers;
    out["q_heads"] = c.q_heads;
    out["kv_heads"] = c.kv_heads;
    out["head_dim"] = c.head_dim;
    out["hidden"] = c.hidden;
    out["ffn_hidden"] = c.ffn_hidden;
    out["context_length"] = c.context_length;
    out["rope_theta"] = c.rope_theta;
    out["tokenizer"] = tokenizer.model() == Tokenizer::Model::byte_level_bpe ? "byte_level_bpe" : "sentencepiece_bpe";
    out["vocab_size"] = tokenizer.vocab_size();
    out["tensors"] = gguf.tensors().size();
    std::printf("%s\n", out.dump().c_str());
    flush_stdout();
  });
}

}  // namespace dso::cli
