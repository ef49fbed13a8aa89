// A data source of a workflow config: which dataset to read, through which adapter, and which of its images to
// keep. Used by `cxr train-classifier` and `cxr study` configs:
//   {"dataset": "nih" | "chexpert" | "mimic" | "padchest" | "vindr" | "manifest",
//    "root": DIR (or the manifest file),      relative paths are resolved against the config file's folder
//    "split": "train" | "valid" | "test" | "" (all),
//    "options": {adapter options, data/adapters/adapters.h load_dataset},
//    "frontal": false, "pa_only": false,      keep frontal (PA/AP) / PA images only
//    "max_images": 0,                          keep the first N after filtering (0: all)
//    "site": ""}                               keep one acquisition site only ("" : all)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/record.h"

namespace cxr::apps {

struct DataSource {
    std::string dataset;
    std::string root;
    std::string split;
    std::map<std::string, std::string> options;
    bool frontal = false;
    bool pa_only = false;
    int64_t max_images = 0;
    std::string site;

    // Throws naming `where` (e.g. "data.train") and the unknown or malformed key.
    static DataSource from_json(const nlohmann::json& j, const std::string& where, const std::string& base_dir = "");
    nlohmann::json to_json() const;
    std::string describe() const;  // "nih:/path split=train"
};

// Reads the records of a source (adapter, split, filters); an empty result is an error naming the source.
std::vector<data::Record> load_source(const DataSource& source);

}  // namespace cxr::apps
