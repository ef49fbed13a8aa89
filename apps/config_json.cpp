// Shared JSON config rules of the workflows (apps/config_json.h).
#include "apps/config_json.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace cxr::apps {

nlohmann::json read_json_file(const std::string& path, const std::string& where, const std::string& what) {
    std::ifstream in(path);
    CXR_CHECK(in.good(), where, ": cannot open ", what, " '", path, "'");
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        CXR_FAIL(where, ": ", what, " '", path, "' is not valid JSON: ", e.what());
    }
}

void check_known_keys(const nlohmann::json& j, const std::string& where, const std::vector<std::string>& known) {
    CXR_CHECK(j.is_object(), where, ": expected a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        CXR_FAIL(where, ": unknown key \"", it.key(), "\" (known: ", list, ")");
    }
}

bool one_of(const std::string& value, std::initializer_list<const char*> options) {
    for (const char* o : options)
        if (value == o) return true;
    return false;
}

std::string config_differences(const nlohmann::json& saved, const nlohmann::json& now) {
    std::string r;
    for (auto it = now.begin(); it != now.end(); ++it)
        if (!saved.contains(it.key()) || saved[it.key()] != it.value())
            r += (r.empty() ? "" : ", ") + it.key() + " (" +
                 (saved.contains(it.key()) ? saved[it.key()].dump() : std::string("absent")) + " -> " +
                 it.value().dump() + ")";
    for (auto it = saved.begin(); it != saved.end(); ++it)
        if (!now.contains(it.key())) r += (r.empty() ? "" : ", ") + it.key() + " (removed)";
    return r;
}

std::string resolve_config_path(const std::string& path, const std::string& base_dir) {
    namespace fs = std::filesystem;
    if (path.empty() || base_dir.empty() || fs::path(path).is_absolute()) return path;
    return (fs::path(base_dir) / path).lexically_normal().string();
}

}  // namespace cxr::apps
