// Progress bar, atomic JSON writer and run record (see progress.h).
#include "apps/progress.h"

#include <algorithm>

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>

#include "tensor/backend.h"
#include "tensor/error.h"

#include "cxr_git_commit.h"  // CXR_GIT_COMMIT, generated at build time (scripts/git_commit.cmake)
#ifndef CXR_BUILD_TYPE
#define CXR_BUILD_TYPE "unknown"
#endif

namespace cxr::apps {

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), start_(std::chrono::steady_clock::now()), last_draw_(start_),
      tty_(isatty(fileno(stderr))) {}

void Progress::update(int64_t done, const std::string& note) {
    auto now = std::chrono::steady_clock::now();
    // Redraw at most 10 times a second on a terminal; print nothing per step when piped (CI logs stay short).
    if (!tty_ || (done < total_ && now - last_draw_ < std::chrono::milliseconds(100))) return;
    last_draw_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? done / elapsed : 0.0;
    double eta = rate > 0 ? (total_ - done) / rate : 0.0;
    const int width = 30;
    int filled = total_ > 0 ? (int)(width * done / total_) : width;
    filled = std::max(0, std::min(width, filled));  // a count past the total must not break the bar
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %.1f it/s ETA %.0fs %s", label_.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), (long long)done, (long long)total_, rate, eta, note.c_str());
    std::fflush(stderr);
}

void Progress::finish() {
    if (tty_) std::fprintf(stderr, "\r\033[K");
}

void write_json_atomically(const std::filesystem::path& path, const nlohmann::json& j) {
    std::filesystem::path tmp = path;
    tmp += ".tmp-" + std::to_string(getpid());
    {
        std::ofstream f(tmp);
        CXR_CHECK(f, "cannot open ", tmp.string(), " for writing");
        f << j.dump(2) << "\n";
        f.close();
        CXR_CHECK(f, "failed writing ", tmp.string());
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp);
        CXR_FAIL("cannot rename ", tmp.string(), " to ", path.string(), ": ", ec.message());
    }
}

void keep_jsonl_lines(const std::filesystem::path& path, const std::function<bool(const nlohmann::json&)>& keep) {
    std::ifstream in(path);
    if (!in) return;
    std::string line, kept;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        try {
            if (keep(nlohmann::json::parse(line))) kept += line + "\n";
        } catch (const nlohmann::json::exception&) {
            // a half-written last line
        }
    }
    in.close();
    std::filesystem::path tmp = path;
    tmp += ".tmp-" + std::to_string(getpid());
    {
        std::ofstream out(tmp, std::ios::trunc);
        CXR_CHECK(out, "cannot open ", tmp.string(), " for writing");
        out << kept;
        out.close();
        CXR_CHECK(out, "writing ", tmp.string(), " failed (disk full?)");
    }
    std::filesystem::rename(tmp, path);
}

nlohmann::json run_record() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return {{"git_commit", CXR_GIT_COMMIT},
            {"build_type", CXR_BUILD_TYPE},
            {"backends_compiled", tensor::compiled_backends()},
            {"date", buf}};
}

}  // namespace cxr::apps
