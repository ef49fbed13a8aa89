// Reading the JSON configs of the workflows (classifier and diffusion trainers, study, synthesis, data sources) with
// one set of rules and messages: an unknown key is an error listing the known ones, a value of the wrong type is an
// error naming its key, and a string option outside its choices is refused naming them. `where` prefixes every
// message ("classifier config", "data.train", ...).
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace cxr::apps {

// The JSON document in `path`; "<where>: cannot open <what> '<path>'" when it cannot be read, "<where>: <what>
// '<path>' is not valid JSON: ..." when it does not parse.
nlohmann::json read_json_file(const std::string& path, const std::string& where, const std::string& what = "file");

// Throws "<where>: unknown key \"k\" (known: a, b, ...)" for the first key of j not in `known`; j must be an object.
void check_known_keys(const nlohmann::json& j, const std::string& where, const std::vector<std::string>& known);

// out = j[key] when j has the key (else out keeps its default); a value of another type throws
// "<where>: \"key\" has the wrong type (...)".
template <class T>
void read_key(const nlohmann::json& j, const char* key, T& out, const std::string& where) {
    if (!j.contains(key)) return;
    try {
        out = j.at(key).get<T>();
    } catch (const nlohmann::json::exception& e) {
        CXR_FAIL(where, ": \"", key, "\" has the wrong type (", e.what(), ")");
    }
}

bool one_of(const std::string& value, std::initializer_list<const char*> options);

// The keys whose values differ between a run's saved config and the new one, for resume errors:
// "lr (0.001 -> 0.002), seed (absent -> 3), cache (removed)".
std::string config_differences(const nlohmann::json& saved, const nlohmann::json& now);

// A relative path from a config file, resolved against the config's folder (unchanged when absolute, empty, or
// when base_dir is empty).
std::string resolve_config_path(const std::string& path, const std::string& base_dir);

}  // namespace cxr::apps
