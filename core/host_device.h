#pragma once
// Marks a function that host code and CUDA kernels both call, so that one
// definition serves both (nvcc compiles it twice; a C++ compiler sees a plain
// function).
#if defined(__CUDACC__)
#define DSO_HOST_DEVICE __host__ __device__
#else
#define DSO_HOST_DEVICE
#endif
