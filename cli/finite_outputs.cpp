#include "cli/finite_outputs.h"

#include <cmath>

#include "core/error.h"

namespace dso::cli {

void require_finite_logits(Decoder& decoder, const std::string& where) {
  decoder.tally_nonfinite_logits();
  const std::int64_t bad = decoder.take_nonfinite_logits();
  require(bad == 0, bad, " of the model's logits are NaN or infinite at ", where,
          ": its numbers overflow, so no token can be chosen");
}

void require_finite_score(const PerplexityResult& result, const std::string& where) {
  require(std::isfinite(result.nll), "the log-likelihood of ", where, " is ", result.nll, " after ",
          result.tokens_scored, " tokens: the model's logits are NaN or infinite, so there is no perplexity to report");
}

}  // namespace dso::cli
