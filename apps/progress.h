// Run bookkeeping shared by the subcommands: a terminal progress bar with rate and ETA, atomic JSON writes
// (temporary name, then rename: a failed run never leaves a half-written file), and the run record
// (git commit, build type, backends, time) written beside every output.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace cxr::apps {

class Progress {
public:
    Progress(std::string label, int64_t total);
    void update(int64_t done, const std::string& note = "");
    void finish();

private:
    std::string label_;
    int64_t total_;
    std::chrono::steady_clock::time_point start_, last_draw_;
    bool tty_;
};

void write_json_atomically(const std::filesystem::path& path, const nlohmann::json& j);
// Rewrites a JSON-lines log keeping the lines for which keep(line) is true, dropping unparsable ones (the
// half-written last line of a killed run); through a temporary file and a rename. A missing file is left missing.
void keep_jsonl_lines(const std::filesystem::path& path, const std::function<bool(const nlohmann::json&)>& keep);
nlohmann::json run_record();

}  // namespace cxr::apps
