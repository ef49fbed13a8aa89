// Portability macros shared by host C++ and CUDA sources.
// CXR_HD marks functions compiled for both host and device (the single-source elementwise math of DESIGN.md §3).
#pragma once

#if defined(__CUDACC__)
#define CXR_HD __host__ __device__
#define CXR_HD_INLINE __host__ __device__ __forceinline__
#else
#define CXR_HD
#define CXR_HD_INLINE inline
#endif
