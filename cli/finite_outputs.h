#pragma once
// A model whose numbers overflow (weights finite but huge, activations past
// the dtype's range) yields NaN or infinite logits: greedy decoding then
// prints whatever token wins a comparison with NaN, and a perplexity turns
// into null. The commands that show a model's output check it and refuse to
// report such a result, with one line naming where it happened.
#include <string>

#include "model/decoder.h"
#include "model/perplexity.h"

namespace dso::cli {

// Throws dso::Error where a logit of the decoder's last decode is NaN or infinite.
void require_finite_logits(Decoder& decoder, const std::string& where);

// Throws dso::Error where the summed log-likelihood is NaN or infinite.
void require_finite_score(const PerplexityResult& result, const std::string& where);

}  // namespace dso::cli
