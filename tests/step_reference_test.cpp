// The CPU references of the engine's bookkeeping kernels (cpu/step_counts.h,
// cpu/window_ring.h) and the recent-window boundary they share, each against
// an oracle built another way: a full history of appended tokens, and the
// indices cpu::select_topk actually returns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/recent_window.h"
#include "core/shape.h"
#include "cpu/step_counts.h"
#include "cpu/topk.h"
#include "cpu/window_ring.h"
#include "offload/policy_rules.h"
#include "support/fill.h"

namespace dso {
namespace {

TEST(RecentWindow, StartsAfterTheSinkAndRecentTokensBeforeTheEnd) {
  EXPECT_EQ(window_begin(100, 4, 16), 84);
  EXPECT_EQ(window_begin(10, 4, 16), 4);  // the window would reach into the sink
  EXPECT_EQ(window_begin(3, 4, 16), 3);   // all sink: the window is empty
  EXPECT_EQ(window_begin(0, 4, 16), 0);
  EXPECT_EQ(window_begin(9, 0, 0), 9);
  EXPECT_EQ(window_begin(9, 0, 20), 0);
  EXPECT_EQ(sink_end(3, 4), 3);
  EXPECT_EQ(sink_end(30, 4), 4);
}

// The boundary is where select_topk stops choosing: every index it returns
// at or past window_begin is a recent token, each of them present, and those
// below sink_end are the sink.
TEST(RecentWindow, IsTheBoundarySelectTopkDraws) {
  std::mt19937_64 rng(0x5eed);
  for (int trial = 0; trial < 500; ++trial) {
    const std::int64_t n = std::int64_t(rng() % 300);
    const TokenBudget b{std::int64_t(rng() % 40), std::int64_t(rng() % 9), std::int64_t(rng() % 60)};
    SCOPED_TRACE("n=" + std::to_string(n) + " k=" + std::to_string(b.k) + " sink=" + std::to_string(b.sink) +
                 " recent=" + std::to_string(b.recent));
    const std::vector<float> scores = test::random_tensor<float>(std::size_t(n) + 1, rng());
    std::vector<std::int32_t> chosen(std::size_t(n) + 1);
    chosen.resize(std::size_t(cpu::select_topk(scores.data(), n, b, chosen.data())));
    const std::int64_t begin = window_begin(n, b.sink, b.recent);
    const auto recent = std::count_if(chosen.begin(), chosen.end(), [&](std::int32_t t) { return t >= begin; });
    const auto sink =
        std::count_if(chosen.begin(), chosen.end(), [&](std::int32_t t) { return t < sink_end(n, b.sink); });
    EXPECT_EQ(recent, n - begin);
    EXPECT_EQ(sink, std::min(n, b.sink));
    EXPECT_EQ(window_begin(n, b), begin);  // the policy rules' form of it
    EXPECT_EQ(cpu::fetched_count(std::int64_t(chosen.size()), n, b.sink, b.recent),
              std::int64_t(chosen.size()) - recent);
    EXPECT_EQ(cpu::fetched_count(std::int64_t(chosen.size()), n, b.sink, b.recent), fetched_tokens(n, b));
  }
}

TEST(CpuStepCounts, AdvanceLengthsAddsTheCountToEverySequence) {
  std::mt19937_64 rng(7);
  for (int sequences : {1, 3, 257}) {
    std::vector<std::int32_t> lengths(static_cast<std::size_t>(sequences));
    for (auto& n : lengths) n = std::int32_t(rng() % 100000);
    const int count = 1 + int(rng() % 9);
    std::vector<std::int32_t> want = lengths;
    for (auto& n : want) n += count;
    cpu::advance_lengths(lengths, count);
    EXPECT_EQ(lengths, want) << "sequences=" << sequences;
  }
}

TEST(CpuStepCounts, CurrentTokenGoesAfterEachHeadsSelection) {
  std::mt19937_64 rng(11);
  const int sequences = 3, kv_heads = 5;
  const std::int64_t stride = 13;
  const int heads = sequences * kv_heads;
  std::vector<std::int32_t> indices(static_cast<std::size_t>(heads * stride)), counts(static_cast<std::size_t>(heads)),
      lengths(static_cast<std::size_t>(sequences));
  for (auto& x : indices) x = std::int32_t(rng() % 1000);
  for (auto& c : counts) c = std::int32_t(rng() % stride);
  for (auto& n : lengths) n = 1000 + std::int32_t(rng() % 1000);
  const std::vector<std::int32_t> indices_before = indices, counts_before = counts;
  cpu::append_current_token(indices.data(), stride, counts.data(), lengths.data(), sequences, kv_heads);
  for (int i = 0; i < heads; ++i) {
    EXPECT_EQ(counts[i], counts_before[i] + 1) << "head " << i;
    for (std::int64_t j = 0; j < stride; ++j) {
      const std::size_t at = std::size_t(i * stride + j);
      EXPECT_EQ(indices[at], j == counts_before[i] ? lengths[i / kv_heads] : indices_before[at])
          << "head " << i << " row " << j;
    }
  }
}

TEST(CpuStepCounts, CountFetchedIsEachHeadsFetchedCount) {
  std::mt19937_64 rng(13);
  const int sequences = 4, kv_heads = 3;
  const std::int64_t sink = 2, recent = 7;
  std::vector<std::int32_t> lengths = {0, 5, 9, 400}, selected(static_cast<std::size_t>(sequences * kv_heads)),
                            fetched(selected.size(), -1);
  for (int i = 0; i < sequences * kv_heads; ++i) {
    const std::int64_t n = lengths[std::size_t(i / kv_heads)];
    selected[std::size_t(i)] = std::int32_t(n - window_begin(n, sink, recent) + std::int64_t(rng() % 30));
  }
  cpu::count_fetched(selected.data(), lengths.data(), fetched.data(), sequences, kv_heads, sink, recent);
  for (int i = 0; i < sequences * kv_heads; ++i)
    EXPECT_EQ(fetched[std::size_t(i)],
              cpu::fetched_count(selected[std::size_t(i)], lengths[std::size_t(i / kv_heads)], sink, recent))
        << "head " << i;
  // n = 9 with 2 sink and 7 recent: every token but the sink is in the window.
  EXPECT_EQ(cpu::fetched_count(9, 9, sink, recent), 2);
  EXPECT_EQ(cpu::fetched_count(3, 400, sink, recent), 3 - 7);
}

// Appends tokens in chunks of random size to one head's ring and, after each
// chunk, assembles the window of its last token behind a random number of
// fetched rows; everything is checked against the full history.
void check_ring(std::int64_t recent, std::int64_t sink, std::int64_t extra_rows, int head_dim, std::uint64_t seed) {
  SCOPED_TRACE("recent=" + std::to_string(recent) + " sink=" + std::to_string(sink) + " extra=" +
               std::to_string(extra_rows) + " d=" + std::to_string(head_dim) + " seed=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::int64_t size = recent + 1 + extra_rows;
  const std::int64_t tokens = 3 * size + 5;
  // History row t of K at t * 2 * head_dim, of V right after it: a source stride of two rows.
  const std::vector<Half> history = test::random_tensor<Half>(std::size_t(tokens * 2 * head_dim), seed);
  std::vector<Half> ring_k = test::random_tensor<Half>(std::size_t(size * head_dim), seed + 1), ring_v = ring_k;
  const cpu::HeadRing<Half> ring{ring_k.data(), ring_v.data(), size, head_dim};
  const std::int64_t max_fetched = 6, rows = max_fetched + recent + 1 + 2;
  const std::vector<Half> slot_init = test::random_tensor<Half>(std::size_t(rows * head_dim), seed + 2);
  const auto key = [&](std::int64_t t) { return history.data() + t * 2 * head_dim; };
  const auto same_row = [&](const Half* a, const Half* b) {
    return std::equal(a, a + head_dim, b, [](Half x, Half y) { return x.bits == y.bits; });
  };
  for (std::int64_t end = 0; end < tokens;) {
    const std::int64_t count = std::min<std::int64_t>(tokens - end, 1 + std::int64_t(rng() % (2 * size)));
    cpu::append_to_ring(ring, end, key(end), key(end) + head_dim, 2 * head_dim, count);
    end += count;
    for (std::int64_t p = std::max<std::int64_t>(0, end - size); p < end; ++p) {
      ASSERT_TRUE(same_row(ring_k.data() + p % size * head_dim, key(p))) << "K of position " << p;
      ASSERT_TRUE(same_row(ring_v.data() + p % size * head_dim, key(p) + head_dim)) << "V of position " << p;
    }
    const std::int64_t n = end - 1, fetched = std::int64_t(rng() % (max_fetched + 1));
    std::vector<Half> slot_k = slot_init, slot_v = slot_init;
    const std::int64_t attended = cpu::assemble_window<Half>({ring_k.data(), ring_v.data(), size, head_dim}, n, sink,
                                                             recent, fetched, slot_k.data(), slot_v.data());
    const std::int64_t begin = std::max(std::min(n, sink), n - recent);
    ASSERT_EQ(attended, fetched + n + 1 - begin) << "n=" << n;
    for (std::int64_t row = 0; row < rows; ++row) {
      const bool window = row >= fetched && row < attended;
      const Half* want_k = window ? key(begin + row - fetched) : slot_init.data() + row * head_dim;
      const Half* want_v = window ? key(begin + row - fetched) + head_dim : slot_init.data() + row * head_dim;
      ASSERT_TRUE(same_row(slot_k.data() + row * head_dim, want_k)) << "K of slot row " << row << " n=" << n;
      ASSERT_TRUE(same_row(slot_v.data() + row * head_dim, want_v)) << "V of slot row " << row << " n=" << n;
    }
  }
}

TEST(CpuWindowRing, KeepsTheNewestTokensAndAssemblesTheWindow) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    check_ring(0, 0, 0, 1, seed);  // a ring of one row: the step's token alone
    check_ring(16, 4, 0, 3, seed);
    check_ring(16, 0, 2, 64, seed);  // a ring larger than the window
    check_ring(6, 40, 0, 5, seed);   // sink past most windows
  }
}

}  // namespace
}  // namespace dso
