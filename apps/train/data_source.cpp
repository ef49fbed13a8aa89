// Data sources of workflow configs (apps/train/data_source.h).
#include "apps/train/data_source.h"

#include <filesystem>

#include "apps/config_json.h"
#include "data/adapters/adapters.h"
#include "data/select.h"
#include "tensor/error.h"

namespace cxr::apps {

DataSource DataSource::from_json(const nlohmann::json& j, const std::string& where, const std::string& base_dir) {
    CXR_CHECK(j.is_object(), where, ": a data source must be a JSON object with \"dataset\" and \"root\"");
    check_known_keys(j, where, {"dataset", "root", "split", "options", "frontal", "pa_only", "max_images", "site",
                                "resplit"});
    DataSource s;
    try {
        s.dataset = j.at("dataset").get<std::string>();
        s.root = j.at("root").get<std::string>();
        s.split = j.value("split", "");
        if (j.contains("options"))
            for (auto it = j["options"].begin(); it != j["options"].end(); ++it)
                s.options[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
        s.frontal = j.value("frontal", false);
        s.pa_only = j.value("pa_only", false);
        s.max_images = j.value("max_images", int64_t{0});
        s.site = j.value("site", "");
        if (j.contains("resplit")) {
            const nlohmann::json& r = j["resplit"];
            CXR_CHECK(r.is_object(), where, ".resplit: expected {\"train\", \"valid\", \"test\", \"seed\"}");
            for (auto it = r.begin(); it != r.end(); ++it)
                CXR_CHECK(it.key() == "train" || it.key() == "valid" || it.key() == "test" || it.key() == "seed", where,
                          ".resplit: unknown key \"", it.key(), "\" (train, valid, test, seed)");
            s.resplit = true;
            s.resplit_fractions[0] = r.value("train", 0.7);
            s.resplit_fractions[1] = r.value("valid", 0.1);
            s.resplit_fractions[2] = r.value("test", 0.2);
            s.resplit_seed = r.value("seed", uint64_t{0});
        }
    } catch (const nlohmann::json::exception& e) {
        CXR_FAIL(where, ": ", e.what());
    }
    const auto& kinds = data::dataset_kinds();
    CXR_CHECK(std::find(kinds.begin(), kinds.end(), s.dataset) != kinds.end(), where, ": unknown dataset \"",
              s.dataset, "\"");
    CXR_CHECK(s.max_images >= 0, where, ": max_images must be >= 0");
    if (s.resplit) {
        data::SplitFractions f{s.resplit_fractions[0], s.resplit_fractions[1], s.resplit_fractions[2]};
        std::vector<data::Record> none;
        try {
            data::assign_patient_splits(none, f, s.resplit_seed);  // validates the fractions
        } catch (const std::exception& e) {
            CXR_FAIL(where, ".resplit: ", e.what());
        }
    }
    if (!base_dir.empty() && !s.root.empty() && std::filesystem::path(s.root).is_relative())
        s.root = (std::filesystem::path(base_dir) / s.root).lexically_normal().string();
    return s;
}

nlohmann::json DataSource::to_json() const {
    nlohmann::json j = {{"dataset", dataset}, {"root", root},       {"split", split},           {"options", options},
                        {"frontal", frontal}, {"pa_only", pa_only}, {"max_images", max_images}, {"site", site}};
    if (resplit)
        j["resplit"] = {{"train", resplit_fractions[0]}, {"valid", resplit_fractions[1]},
                        {"test", resplit_fractions[2]},  {"seed", resplit_seed}};
    return j;
}

std::string DataSource::describe() const {
    return dataset + ":" + root + (split.empty() ? "" : " split=" + split) + (site.empty() ? "" : " site=" + site);
}

std::vector<data::Record> load_source(const DataSource& source) {
    std::vector<data::Record> all = data::load_dataset(source.dataset, source.root, source.options);
    if (source.frontal || source.pa_only) all = data::filter_frontal(all, source.pa_only);
    if (source.resplit)
        data::assign_patient_splits(all, {source.resplit_fractions[0], source.resplit_fractions[1],
                                          source.resplit_fractions[2]},
                                    source.resplit_seed);
    std::vector<data::Record> out;
    for (auto& r : all) {
        if (!source.split.empty() && r.split != source.split) continue;
        if (!source.site.empty() && r.site != source.site) continue;
        out.push_back(std::move(r));
        if (source.max_images > 0 && static_cast<int64_t>(out.size()) >= source.max_images) break;
    }
    CXR_CHECK(!out.empty(), "data source ", source.describe(), " has no images after filtering");
    return out;
}

}  // namespace cxr::apps
