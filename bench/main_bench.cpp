// The one main() of dso_bench; every *_bench file only registers benchmarks.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
