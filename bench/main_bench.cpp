// The one main() of dso_bench: the *_bench files only register benchmarks.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
