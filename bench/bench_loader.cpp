// Benchmark of data/loader: images/s delivered by cxr::data::Loader on the NIH sample (../shared/data/nih1000,
// 1,000 PNGs, read through load_dataset("nih", root)) at 64 and 224 px, with 0, 1 and 2 worker threads, without
// and with the preprocessed cache (u8). Each configuration is validated before it is timed: its first epoch's
// batches must equal those of the reference configuration (0 workers, no cache) exactly, or within the u8
// quantisation (0.5/255) with the cache. Timing: one warm-up epoch (fills the page cache), then the median of
// R timed epochs (R = 3); images/s = images per epoch / median epoch time. The cache build time (decode + resize
// + write of all 1,000 images, with 2 threads) is reported separately; it is paid once.
//
// Usage: bench_loader [--root DIR] [--batch B] [--channels C] [--epochs R] [--cache-dir DIR]
//        (default root: $CXR_REAL_DATA/nih1000, else ../shared/data/nih1000 from the current directory)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "data/adapters/adapters.h"
#include "data/loader.h"
#include "tensor/error.h"

using cxr::data::Batch;
using cxr::data::Loader;
using cxr::data::LoaderOptions;

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string loadavg() {
    FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f) return "?";
    char buf[128] = {0};
    const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
    std::fclose(f);
    std::string s(buf, n);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

double cpu_s() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Consumes an epoch the way a trainer does: each batch is dropped before the next is asked for.
int64_t drain(Loader& loader, int64_t e) {
    loader.start_epoch(e);
    int64_t n = 0;
    Batch b;
    while (loader.next(b)) n += b.size();
    return n;
}

std::vector<Batch> epoch(Loader& loader, int64_t e) {
    loader.start_epoch(e);
    std::vector<Batch> out;
    Batch b;
    while (loader.next(b)) out.push_back(b);
    return out;
}

// Max |a - b| over all batches; -1 when indices or shapes differ.
double compare(const std::vector<Batch>& a, const std::vector<Batch>& b) {
    if (a.size() != b.size()) return -1;
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].indices != b[i].indices || a[i].images.sizes() != b[i].images.sizes()) return -1;
        auto va = a[i].images.to_vector<float>(), vb = b[i].images.to_vector<float>();
        for (size_t k = 0; k < va.size(); ++k) m = std::max(m, (double)std::fabs(va[k] - vb[k]));
        if (a[i].targets.to_vector<float>() != b[i].targets.to_vector<float>()) return -1;
    }
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    std::string root;
    if (const char* env = std::getenv("CXR_REAL_DATA")) root = std::string(env) + "/nih1000";
    else root = "../shared/data/nih1000";
    int64_t batch = 32;
    int channels = 3, reps = 3;
    std::string cache_dir = std::filesystem::temp_directory_path().string();
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "bench_loader: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--root") root = value();
        else if (a == "--batch") batch = std::stoll(value());
        else if (a == "--channels") channels = std::stoi(value());
        else if (a == "--epochs") reps = std::stoi(value());
        else if (a == "--cache-dir") cache_dir = value();
        else {
            std::fprintf(stderr, "usage: bench_loader [--root DIR] [--batch B] [--channels C] [--epochs R] "
                                 "[--cache-dir DIR]\n");
            return 2;
        }
    }
    try {
        auto records = cxr::data::load_dataset("nih", root);
        std::printf("# bench_loader: %zu records from %s, batch %lld, %d channels, median of %d epochs, "
                    "%u hardware threads\n",
                    records.size(), root.c_str(), (long long)batch, channels, reps,
                    std::max(1u, std::thread::hardware_concurrency()));
        std::printf("# /proc/loadavg at start: %s\n", loadavg().c_str());
        std::printf("| size | cache | workers | images/s | epoch ms | CPU-s / epoch | max diff vs reference |\n");
        std::printf("|---:|---|---:|---:|---:|---:|---:|\n");
        bool ok = true;
        for (int size : {64, 224}) {
            LoaderOptions base;
            base.batch_size = batch;
            base.image_size = size;
            base.channels = channels;
            base.seed = 1;
            base.workers = 0;
            Loader ref_loader(records, base);
            const auto reference = epoch(ref_loader, 0);

            const std::string cache = cache_dir + "/cxr_bench_loader_" + std::to_string(::getpid()) + "_" +
                                      std::to_string(size) + ".u8";
            double build_s = 0;
            {
                LoaderOptions o = base;
                o.cache_path = cache;
                o.workers = 2;
                const double t0 = now_s();
                Loader builder(records, o);
                build_s = now_s() - t0;
            }
            for (bool cached : {false, true}) {
                for (int workers : {0, 1, 2}) {
                    LoaderOptions o = base;
                    o.workers = workers;
                    if (cached) o.cache_path = cache;
                    Loader loader(records, o);
                    // Validate, then time.
                    const double diff = compare(epoch(loader, 0), reference);
                    const double tol = cached ? 0.5 / 255 + 1e-6 : 0.0;
                    const bool valid = diff >= 0 && diff <= tol;
                    ok = ok && valid;
                    std::vector<double> times;
                    double cpu = 0;
                    for (int r = 0; r < reps; ++r) {
                        const double c0 = cpu_s(), t0 = now_s();
                        const int64_t n = drain(loader, 0);
                        times.push_back(now_s() - t0);
                        if (n != loader.size()) ok = false;
                        cpu += cpu_s() - c0;
                    }
                    std::sort(times.begin(), times.end());
                    const double med = times[times.size() / 2];
                    std::printf("| %d | %s | %d | %.0f | %.1f | %.3f | %s |\n", size, cached ? "u8" : "none",
                                workers, (double)loader.size() / med, 1e3 * med, cpu / reps,
                                valid ? (diff == 0 ? "0 (exact)" : std::to_string(diff).c_str())
                                      : "INVALID");
                }
            }
            std::printf("| %d | u8 build | 2 | %.0f | %.1f (one-off build, %.1f MB file) | | |\n", size,
                        (double)records.size() / build_s, 1e3 * build_s,
                        std::filesystem::file_size(cache) / 1e6);
            std::filesystem::remove(cache);
        }
        std::printf("# /proc/loadavg at end: %s\n", loadavg().c_str());
        if (!ok) {
            std::fprintf(stderr, "bench_loader: a configuration did not match the reference\n");
            return 1;
        }
    } catch (const cxr::Error& e) {
        std::fprintf(stderr, "bench_loader: %s\n", e.what());
        return 1;
    }
    return 0;
}
