// Throughput of the phantom generator (data/phantom.h): images/s at a given size (default 64 px) for
//   render    phantom_case + render_phantom in memory (the generator itself),
//   write     write_phantom_dataset to a temporary folder (adds PNG encoding, file writes and the manifest),
// each with one OpenMP thread and with all threads. The same images are made in every run (seed 0), and the
// single- and all-thread renders are checked to be identical before the rates are printed.
//
// Usage: bench_phantom [--n N] [--size S]     (threads: OMP_NUM_THREADS for the all-thread runs)
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "data/phantom.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    using namespace cxr::data;
    PhantomOptions o;
    o.n = 2000;
    o.size = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--n")) o.n = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--size")) o.size = std::atoi(argv[i + 1]);
    }
    const int all = omp_get_max_threads();
    std::printf("phantom benchmark: n = %lld, size = %d, threads 1 and %d\n", (long long)o.n, o.size, all);
    std::vector<std::vector<float>> first((size_t)o.n);
    for (int threads : {1, all}) {
        omp_set_num_threads(threads);
        std::vector<std::vector<float>> imgs((size_t)o.n);
        const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 8)
        for (int64_t i = 0; i < o.n; ++i) imgs[(size_t)i] = render_phantom(phantom_case(o, i), o, i);
        const double s = seconds_since(t0);
        if (threads == 1) first = imgs;
        else if (imgs != first) {
            std::fprintf(stderr, "bench_phantom: renders differ between 1 and %d threads\n", threads);
            return 1;
        }
        std::printf("render  %2d thread(s): %8.0f images/s (%.3f s)\n", threads, (double)o.n / s, s);
    }
    const auto dir = std::filesystem::temp_directory_path() / "cxr_bench_phantom";
    for (int threads : {1, all}) {
        omp_set_num_threads(threads);
        std::filesystem::remove_all(dir);
        const auto t0 = std::chrono::steady_clock::now();
        write_phantom_dataset(dir.string(), o);
        const double s = seconds_since(t0);
        std::printf("write   %2d thread(s): %8.0f images/s (%.3f s)\n", threads, (double)o.n / s, s);
    }
    std::filesystem::remove_all(dir);
    return 0;
}
