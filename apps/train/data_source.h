// A data source of a workflow config: which dataset to read, through which adapter, and which of its images to
// keep. Used by `cxr train-classifier` and `cxr study` configs:
//   {"dataset": "nih" | "chexpert" | "mimic" | "padchest" | "vindr" | "manifest",
//    "root": DIR (or the manifest file),      relative paths are resolved against the config file's folder
//    "split": "train" | "valid" | "test" | "" (all),
//    "options": {adapter options, data/adapters/adapters.h load_dataset},
//    "frontal": false, "pa_only": false,      keep frontal (PA/AP) / PA images only
//    "max_images": 0,                          keep the first N after filtering (0: all)
//    "site": "",                               keep one acquisition site only ("" : all)
//    "resplit": {"train": 0.7, "valid": 0.1, "test": 0.2, "seed": 0}}   optional: replace the dataset's splits by
//                                              patient-disjoint ones (data/select.h) before "split" is applied
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
    bool resplit = false;           // assign new patient-disjoint splits (data/select.h) before filtering by split
    double resplit_fractions[3] = {0.7, 0.1, 0.2};
    uint64_t resplit_seed = 0;

    // Throws naming `where` (e.g. "data.train") and the unknown or malformed key.
    static DataSource from_json(const nlohmann::json& j, const std::string& where, const std::string& base_dir = "");
    nlohmann::json to_json() const;
    std::string describe() const;  // "nih:/path split=train"
};

// Reads the records of a source (adapter, split, filters); an empty result is an error naming the source.
std::vector<data::Record> load_source(const DataSource& source);

}  // namespace cxr::apps
