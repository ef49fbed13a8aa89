// The study runner (apps/study/study.h).
#include "apps/study/study.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <set>

#include "apps/config_json.h"
#include "apps/progress.h"
#include "apps/study/report.h"
#include "data/labels.h"
#include "metrics/evaluate.h"
#include "metrics/fairness.h"
#include "metrics/predictions.h"
#include "tensor/error.h"
#include "tensor/generator.h"

namespace cxr::apps {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------- config

namespace {

template <class T>
std::vector<T> one_or_list(const json& j, const std::string& where) {
    try {
        if (j.is_array()) return j.get<std::vector<T>>();
        return {j.get<T>()};
    } catch (const json::exception& e) {
        CXR_FAIL(where, ": ", e.what());
    }
}

}  // namespace

StudyConfig StudyConfig::from_json(const json& j, const std::string& base_dir) {
    check_known_keys(j, "study config",
               {"name", "data", "model", "strategies", "baseline", "seeds", "evaluate", "samples"});
    StudyConfig c;
    try {
        c.name = j.value("name", c.name);
        const json& d = j.at("data");
        check_known_keys(d, "data", {"train", "valid", "tests", "synthetic", "synthetic_description", "synthetic_stand_in"});
        c.train = DataSource::from_json(d.at("train"), "data.train", base_dir);
        c.valid = DataSource::from_json(d.at("valid"), "data.valid", base_dir);
        if (d.contains("synthetic")) {
            c.synthetic = DataSource::from_json(d["synthetic"], "data.synthetic", base_dir);
            c.has_synthetic = true;
        }
        c.synthetic_description = d.value("synthetic_description", "");
        c.synthetic_stand_in = d.value("synthetic_stand_in", false);
        CXR_CHECK(d.contains("tests") && d["tests"].is_array() && !d["tests"].empty(),
                  "data.tests: a list of at least one {\"name\", \"source\"} (the first is the in-distribution set)");
        std::set<std::string> names;
        for (size_t i = 0; i < d["tests"].size(); ++i) {
            const json& t = d["tests"][i];
            const std::string where = "data.tests[" + std::to_string(i) + "]";
            check_known_keys(t, where, {"name", "source", "description"});
            StudyTest st;
            st.name = t.at("name").get<std::string>();
            CXR_CHECK(!st.name.empty() && names.insert(st.name).second, where, ": test names must be unique and non-empty");
            st.description = t.value("description", "");
            st.source = DataSource::from_json(t.at("source"), where + ".source", base_dir);
            c.tests.push_back(st);
        }
        c.model = j.value("model", json::object());
        ClassifierConfig::from_json(c.model);  // validates
        CXR_CHECK(j.contains("strategies") && j["strategies"].is_array() && !j["strategies"].empty(),
                  "strategies: a list of at least one strategy");
        std::set<std::string> snames;
        for (size_t i = 0; i < j["strategies"].size(); ++i) {
            const json& s = j["strategies"][i];
            const std::string where = "strategies[" + std::to_string(i) + "]";
            check_known_keys(s, where, {"name", "kind", "train", "real_images", "synthetic_images", "synthetic_amounts",
                                  "alpha", "pretrain_lr", "finetune_lr", "oversample"});
            StudyStrategy st;
            st.name = s.at("name").get<std::string>();
            CXR_CHECK(!st.name.empty() && st.name.find('/') == std::string::npos && snames.insert(st.name).second,
                      where, ": strategy names must be unique, non-empty and without '/'");
            st.kind = s.at("kind").get<std::string>();
            CXR_CHECK(st.kind == "real" || st.kind == "synthetic" || st.kind == "mix" || st.kind == "pretrain_finetune",
                      where, ".kind: \"", st.kind, "\" is not one of real, synthetic, mix, pretrain_finetune");
            st.train = s.value("train", json::object());
            json merged = c.model;
            for (auto it = st.train.begin(); it != st.train.end(); ++it) merged[it.key()] = it.value();
            try {
                ClassifierConfig::from_json(merged);
            } catch (const std::exception& e) {
                CXR_FAIL(where, ".train: ", e.what());
            }
            if (s.contains("real_images")) st.real_images = one_or_list<int64_t>(s["real_images"], where + ".real_images");
            if (s.contains("synthetic_images"))
                st.synthetic_images = one_or_list<int64_t>(s["synthetic_images"], where + ".synthetic_images");
            if (s.contains("synthetic_amounts"))
                st.synthetic_amounts = one_or_list<int64_t>(s["synthetic_amounts"], where + ".synthetic_amounts");
            if (s.contains("alpha")) st.alpha = one_or_list<double>(s["alpha"], where + ".alpha");
            st.pretrain_lr = s.value("pretrain_lr", st.pretrain_lr);
            st.finetune_lr = s.value("finetune_lr", st.finetune_lr);
            st.oversample = s.value("oversample", "");
            for (auto v : st.real_images) CXR_CHECK(v >= 0, where, ".real_images: values must be >= 0");
            for (auto v : st.synthetic_images) CXR_CHECK(v >= 0, where, ".synthetic_images: values must be >= 0");
            for (auto v : st.synthetic_amounts) CXR_CHECK(v > 0, where, ".synthetic_amounts: values must be > 0");
            for (auto a : st.alpha) CXR_CHECK(a > 0 && a < 1, where, ".alpha: values must be in (0, 1)");
            if (st.kind == "mix")
                CXR_CHECK(!st.synthetic_amounts.empty() || !st.alpha.empty(), where,
                          ": a mix strategy needs \"synthetic_amounts\" or \"alpha\"");
            if (st.kind != "real") CXR_CHECK(st.oversample.empty(), where, ": \"oversample\" applies to kind real only");
            if (!st.oversample.empty()) metrics::parse_grouping(st.oversample);
            CXR_CHECK(st.kind == "real" || c.has_synthetic, where, ": kind ", st.kind,
                      " needs data.synthetic");
            CXR_CHECK(st.pretrain_lr > 0 && st.finetune_lr > 0, where, ": learning rates must be positive");
            c.strategies.push_back(st);
        }
        c.baseline = j.value("baseline", c.strategies.front().name);
        bool found = false;
        for (const auto& s : c.strategies) found = found || (s.name == c.baseline && s.kind == "real");
        CXR_CHECK(found, "baseline: \"", c.baseline, "\" is not a strategy of kind real");
        if (j.contains("seeds")) c.seeds = one_or_list<uint64_t>(j["seeds"], "seeds");
        CXR_CHECK(!c.seeds.empty(), "seeds: at least one seed");
        const json ev = j.value("evaluate", json::object());
        check_known_keys(ev, "evaluate", {"bootstrap", "seed", "groups", "min_subgroup_size"});
        c.bootstrap = ev.value("bootstrap", c.bootstrap);
        c.eval_seed = ev.value("seed", c.eval_seed);
        if (ev.contains("groups")) c.groups = ev["groups"].get<std::vector<std::vector<std::string>>>();
        for (const auto& g : c.groups) {
            std::string joined;
            for (const auto& a : g) joined += (joined.empty() ? "" : ",") + a;
            metrics::parse_grouping(joined);
        }
        c.min_subgroup_size = ev.value("min_subgroup_size", c.min_subgroup_size);
        const json sm = j.value("samples", json::object());
        check_known_keys(sm, "samples", {"findings", "per_cell"});
        c.sample_findings = sm.value("findings", std::vector<std::string>{"No Finding", "Cardiomegaly",
                                                                          "Pleural Effusion", "Pneumothorax"});
        c.samples_per_cell = sm.value("per_cell", int64_t{1});
    } catch (const json::exception& e) {
        CXR_FAIL("study config: ", e.what());
    }
    return c;
}

json StudyConfig::to_json() const {
    json tests_j = json::array();
    for (const auto& t : tests) tests_j.push_back({{"name", t.name}, {"description", t.description}, {"source", t.source.to_json()}});
    json strategies_j = json::array();
    for (const auto& s : strategies)
        strategies_j.push_back({{"name", s.name},
                                {"kind", s.kind},
                                {"train", s.train},
                                {"real_images", s.real_images},
                                {"synthetic_images", s.synthetic_images},
                                {"synthetic_amounts", s.synthetic_amounts},
                                {"alpha", s.alpha},
                                {"pretrain_lr", s.pretrain_lr},
                                {"finetune_lr", s.finetune_lr},
                                {"oversample", s.oversample}});
    json data = {{"train", train.to_json()}, {"valid", valid.to_json()}, {"tests", tests_j},
                 {"synthetic_description", synthetic_description}, {"synthetic_stand_in", synthetic_stand_in}};
    if (has_synthetic) data["synthetic"] = synthetic.to_json();
    return {{"name", name},
            {"data", data},
            {"model", ClassifierConfig::from_json(model).to_json()},
            {"strategies", strategies_j},
            {"baseline", baseline},
            {"seeds", seeds},
            {"evaluate", {{"bootstrap", bootstrap}, {"seed", eval_seed}, {"groups", groups},
                          {"min_subgroup_size", min_subgroup_size}}},
            {"samples", {{"findings", sample_findings}, {"per_cell", samples_per_cell}}}};
}

// ---------------------------------------------------------------- subsets and oversampling

std::vector<size_t> subset_indices(size_t size, int64_t n, uint64_t seed, uint64_t stream) {
    std::vector<double> key(size);
    if (size > 0) tensor::fill_uniform_f64(key.data(), static_cast<int64_t>(size), seed ^ (0x9E3779B97F4A7C15ULL * (stream + 1)), 0, 0.0, 1.0);
    std::vector<size_t> idx(size);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
    if (n > 0 && static_cast<size_t>(n) < size) idx.resize(static_cast<size_t>(n));
    return idx;
}

std::string attribute_key(const data::Record& r, const std::vector<std::string>& attributes) {
    std::string key;
    for (const auto& a : attributes) {
        std::string v;
        if (a == "sex") v = data::sex_code(r.sex);
        else if (a == "race") v = r.race == data::Race::other_unknown ? "" : data::race_name(r.race);
        else if (a == "age") v = r.has_age() ? metrics::age_bin(r.age) : "";
        else if (a == "site") v = r.site;
        else CXR_FAIL("unknown attribute \"", a, "\" (sex, race, age, site)");
        key += (key.empty() ? "" : "+") + (v.empty() ? "?" : v);
    }
    return key;
}

std::vector<data::Record> oversample(const std::vector<data::Record>& records, const std::vector<std::string>& attributes,
                                     uint64_t seed) {
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i = 0; i < records.size(); ++i) groups[attribute_key(records[i], attributes)].push_back(i);
    size_t largest = 0;
    for (const auto& [k, v] : groups) largest = std::max(largest, v.size());
    std::vector<data::Record> out = records;
    uint64_t stream = 100;
    for (const auto& [k, members] : groups) {
        const size_t extra = largest - members.size();
        const std::vector<size_t> order = subset_indices(members.size(), 0, seed, stream++);
        for (size_t e = 0; e < extra; ++e) out.push_back(records[members[order[e % order.size()]]]);
    }
    return out;
}

// ---------------------------------------------------------------- runs

namespace {

struct Run {
    std::string id;        // "real/seed0", "mix_500/seed0", "pretrain_finetune_real100/seed0", "pretrain/seed0"
    std::string strategy;  // the strategy name ("" for a pretraining run)
    std::string kind;
    std::string variant;   // "", "+500 syn", "100 real", ...
    std::string label;     // display name
    uint64_t seed = 0;
    int64_t real_n = -1, synthetic_n = -1;  // subset sizes (0 = all); -1 = set not used
    bool oversampled = false;
    std::string oversample;
    json train_overrides = json::object();
    std::string init_run;  // the run whose best checkpoint initialises this one
    bool evaluate = true;  // pretraining runs are not evaluated
};

std::string dir_name(const std::string& id) {
    std::string r = id;
    std::replace(r.begin(), r.end(), '/', '_');
    return r;
}

std::vector<Run> plan_runs(const StudyConfig& c, size_t real_count) {
    std::vector<Run> runs;
    // the baseline first: every other run's comparison needs its predictions
    std::vector<const StudyStrategy*> order;
    for (const auto& s : c.strategies)
        if (s.name == c.baseline) order.push_back(&s);
    for (const auto& s : c.strategies)
        if (s.name != c.baseline) order.push_back(&s);
    for (uint64_t seed : c.seeds) {
        const std::string sd = "/seed" + std::to_string(seed);
        for (const StudyStrategy* s : order) {
            auto base = [&](const std::string& suffix, const std::string& variant) {
                Run r;
                r.id = s->name + suffix + sd;
                r.strategy = s->name;
                r.kind = s->kind;
                r.variant = variant;
                r.label = s->name + (variant.empty() ? "" : " " + variant);
                r.seed = seed;
                r.train_overrides = s->train;
                return r;
            };
            if (s->kind == "real") {
                for (int64_t n : s->real_images) {
                    Run r = base(n ? "_real" + std::to_string(n) : "", n ? std::to_string(n) + " real" : "");
                    r.real_n = n;
                    r.oversample = s->oversample;
                    runs.push_back(r);
                }
            } else if (s->kind == "synthetic") {
                for (int64_t n : s->synthetic_images) {
                    Run r = base(n ? "_syn" + std::to_string(n) : "", n ? std::to_string(n) + " syn" : "");
                    r.synthetic_n = n;
                    runs.push_back(r);
                }
            } else if (s->kind == "mix") {
                std::vector<int64_t> amounts = s->synthetic_amounts;
                for (double a : s->alpha) {
                    const int64_t r = s->real_images.front() ? s->real_images.front() : static_cast<int64_t>(real_count);
                    amounts.push_back(std::max<int64_t>(1, std::llround(a * static_cast<double>(r) / (1.0 - a))));
                }
                for (int64_t n : amounts) {
                    Run r = base("_syn" + std::to_string(n), "+" + std::to_string(n) + " syn");
                    r.real_n = s->real_images.front();
                    r.synthetic_n = n;
                    runs.push_back(r);
                }
            } else {  // pretrain_finetune
                Run pre;
                pre.id = s->name + "_pretrain" + sd;
                pre.kind = "pretrain";
                pre.label = s->name + " (pretraining)";
                pre.seed = seed;
                pre.synthetic_n = s->synthetic_images.front();
                pre.train_overrides = s->train;
                pre.train_overrides["lr"] = s->pretrain_lr;
                pre.evaluate = false;
                runs.push_back(pre);
                for (int64_t n : s->real_images) {
                    Run r = base(n ? "_real" + std::to_string(n) : "", n ? std::to_string(n) + " real" : "");
                    r.real_n = n;
                    r.train_overrides["lr"] = s->finetune_lr;
                    r.init_run = pre.id;
                    runs.push_back(r);
                }
            }
        }
    }
    return runs;
}

std::vector<data::Record> pick(const std::vector<data::Record>& set, int64_t n, uint64_t seed, uint64_t stream) {
    std::vector<data::Record> out;
    for (size_t i : subset_indices(set.size(), n, seed, stream)) out.push_back(set[i]);
    return out;
}

json read_json(const fs::path& p) { return read_json_file(p.string(), "study", "record"); }

json mean_ci(const std::vector<json>& cis) {
    double lo = 0, hi = 0;
    int n = 0;
    for (const auto& ci : cis)
        if (ci.is_array() && ci.size() == 2 && ci[0].is_number() && ci[1].is_number()) {
            lo += ci[0].get<double>();
            hi += ci[1].get<double>();
            ++n;
        }
    if (n == 0) return nullptr;
    return json::array({lo / n, hi / n});
}

json mean_of(const std::vector<json>& values) {
    double s = 0;
    int n = 0;
    for (const auto& v : values)
        if (v.is_number()) {
            s += v.get<double>();
            ++n;
        }
    return n ? json(s / n) : json(nullptr);
}

json at_path(const json& j, std::initializer_list<const char*> path) {
    const json* p = &j;
    for (const char* k : path) {
        if (!p->is_object() || !p->contains(k)) return nullptr;
        p = &(*p)[k];
    }
    return *p;
}

}  // namespace

// ---------------------------------------------------------------- the study

StudyResult run_study(const StudyConfig& config, const std::string& out_dir, const StudyHooks& hooks) {
    const fs::path out(out_dir);
    fs::create_directories(out / "runs");
    const json config_json = config.to_json();
    if (fs::exists(out / "config.json")) {
        const json saved = read_json(out / "config.json");
        CXR_CHECK(saved == config_json, "study folder '", out_dir,
                  "' holds a study with another config (config.json differs); use a new folder or the same config");
    }
    write_json_atomically(out / "config.json", config_json);
    write_json_atomically(out / "run.json", run_record());

    const auto real = load_source(config.train);
    const auto valid = load_source(config.valid);
    std::vector<data::Record> synthetic;
    if (config.has_synthetic) synthetic = load_source(config.synthetic);
    std::vector<std::vector<data::Record>> tests;
    for (const auto& t : config.tests) tests.push_back(load_source(t.source));
    const ClassifierConfig base_model = ClassifierConfig::from_json(config.model);
    const std::vector<std::string> labels = base_model.label_names();

    const std::vector<Run> runs = plan_runs(config, real.size());
    StudyResult result;
    if (!hooks.quiet)
        std::cerr << "study \"" << config.name << "\": " << runs.size() << " runs (" << real.size() << " real, "
                  << synthetic.size() << " synthetic training images; " << tests.size() << " test sets)\n";
    metrics::EvaluateOptions eopt;
    eopt.labels = labels;
    eopt.bootstrap = config.bootstrap;
    eopt.seed = config.eval_seed;
    eopt.min_subgroup_size = config.min_subgroup_size;
    eopt.groupings = config.groups;

    std::map<std::string, json> done;
    for (size_t k = 0; k < runs.size(); ++k) {
        const Run& run = runs[k];
        const fs::path dir = out / "runs" / dir_name(run.id);
        if (fs::exists(dir / "done.json")) {
            done[run.id] = read_json(dir / "done.json");
            result.reused.push_back(run.id);
            continue;
        }
        if (!hooks.quiet)
            std::cerr << "[" << k + 1 << "/" << runs.size() << "] " << run.id << "\n";
        json cfg = config.model;
        for (auto it = run.train_overrides.begin(); it != run.train_overrides.end(); ++it) cfg[it.key()] = it.value();
        cfg["seed"] = run.seed;
        if (!run.init_run.empty()) cfg["init"] = (out / "runs" / dir_name(run.init_run) / "train" / "best").string();
        const ClassifierConfig cc = ClassifierConfig::from_json(cfg);

        std::vector<data::Record> train_set;
        int64_t n_real = 0, n_syn = 0;
        if (run.real_n >= 0) {
            auto r = pick(real, run.real_n, run.seed, 1);
            if (!run.oversample.empty()) r = oversample(r, metrics::parse_grouping(run.oversample), run.seed);
            n_real = static_cast<int64_t>(r.size());
            train_set.insert(train_set.end(), r.begin(), r.end());
        }
        if (run.synthetic_n >= 0) {
            CXR_CHECK(run.synthetic_n <= static_cast<int64_t>(synthetic.size()), "run ", run.id, " asks for ",
                      run.synthetic_n, " synthetic images; the synthetic set has ", synthetic.size());
            auto s = pick(synthetic, run.synthetic_n, run.seed, 2);
            n_syn = static_cast<int64_t>(s.size());
            train_set.insert(train_set.end(), s.begin(), s.end());
        }
        const auto t0 = std::chrono::steady_clock::now();
        TrainHooks th;
        th.quiet = hooks.quiet;
        const TrainResult tr = train_classifier(cc, train_set, valid, (dir / "train").string(), th);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        json summary = {{"id", run.id},           {"strategy", run.strategy},   {"kind", run.kind},
                        {"variant", run.variant}, {"label", run.label},         {"seed", run.seed},
                        {"real_images", n_real},  {"synthetic_images", n_syn},  {"best_epoch", tr.best_epoch},
                        {"valid_macro_auroc", std::isfinite(tr.best_valid_auroc) ? json(tr.best_valid_auroc) : json(nullptr)},
                        {"train_seconds", seconds}, {"evaluated", run.evaluate}};
        if (run.evaluate) {
            auto model = load_classifier(tr.best_checkpoint, cc);
            const metrics::Predictions vp = predict(*model, cc, valid);
            metrics::write_predictions_csv((dir / "pred_valid.csv").string(), vp);
            json per_test = json::object();
            for (size_t t = 0; t < tests.size(); ++t) {
                const std::string& name = config.tests[t].name;
                const metrics::Predictions tp = predict(*model, cc, tests[t]);
                const std::string pred_path = (dir / ("pred_" + name + ".csv")).string();
                metrics::write_predictions_csv(pred_path, tp);
                // compare with the baseline of the same seed (its predictions are on disk: it ran first)
                const fs::path base_pred = out / "runs" / dir_name(config.baseline + "/seed" + std::to_string(run.seed)) /
                                           ("pred_" + name + ".csv");
                std::optional<metrics::Predictions> cmp;
                if (run.strategy != config.baseline && fs::exists(base_pred))
                    cmp = metrics::read_predictions_csv(base_pred.string());
                json m = metrics::evaluate(tp, &vp, cmp ? &*cmp : nullptr, eopt);
                write_json_atomically(dir / ("metrics_" + name + ".json"), m);
                per_test[name] = m;
            }
            summary["tests"] = per_test;
        }
        write_json_atomically(dir / "done.json", summary);
        done[run.id] = summary;
        result.trained.push_back(run.id);
        if (hooks.after_run && !hooks.after_run(run.id)) return result;
    }

    // ---- metrics.json ----
    json runs_j = json::array();
    for (const Run& run : runs)
        if (run.evaluate) runs_j.push_back(done.at(run.id));
    // summary: per (strategy, variant) and test, means over seeds; CIs = means of the per-seed CI bounds
    json summary = json::array();
    std::vector<std::string> keys;  // (label) in plan order
    std::map<std::string, std::vector<json>> by_label;
    for (const auto& r : runs_j) {
        const std::string l = r["label"];
        if (!by_label.count(l)) keys.push_back(l);
        by_label[l].push_back(r);
    }
    std::vector<std::string> grouping_names;
    for (const auto& g : config.groups) grouping_names.push_back(metrics::grouping_name(g));
    for (const auto& l : keys) {
        const auto& rs = by_label[l];
        for (const auto& t : config.tests) {
            auto collect = [&](std::initializer_list<const char*> path) {
                std::vector<json> v;
                for (const auto& r : rs) v.push_back(at_path(r["tests"][t.name], path));
                return v;
            };
            json row = {{"strategy", rs[0]["strategy"]},
                        {"kind", rs[0]["kind"]},
                        {"variant", rs[0]["variant"]},
                        {"label", l},
                        {"real_images", rs[0]["real_images"]},
                        {"synthetic_images", rs[0]["synthetic_images"]},
                        {"test", t.name},
                        {"seeds", rs.size()},
                        {"macro_auroc", mean_of(collect({"macro", "auroc"}))},
                        {"macro_auroc_ci", mean_ci(collect({"macro", "auroc_ci"}))},
                        {"macro_auprc", mean_of(collect({"macro", "auprc"}))},
                        {"macro_auprc_ci", mean_ci(collect({"macro", "auprc_ci"}))},
                        {"macro_auroc_difference", mean_of(collect({"delong", "macro", "auroc_difference"}))},
                        {"macro_auroc_difference_ci", mean_ci(collect({"delong", "macro", "auroc_difference_ci"}))}};
            json fair = json::object();
            for (const auto& g : grouping_names) {
                std::vector<json> gap, gap_ci, ud, ud_ci;
                std::map<std::string, std::vector<json>> sub_auroc;
                std::map<std::string, int64_t> sub_n;
                for (const auto& r : rs) {
                    const json f = at_path(r["tests"][t.name], {"fairness"});
                    if (!f.is_object() || !f.contains(g)) continue;
                    gap.push_back(f[g].value("auroc_gap", json()));
                    gap_ci.push_back(f[g].value("auroc_gap_ci", json()));
                    ud.push_back(f[g].value("underdiagnosis_gap", json()));
                    ud_ci.push_back(f[g].value("underdiagnosis_gap_ci", json()));
                    if (f[g].contains("subgroups"))
                        for (auto it = f[g]["subgroups"].begin(); it != f[g]["subgroups"].end(); ++it) {
                            sub_auroc[it.key()].push_back(it.value().value("auroc", json()));
                            sub_n[it.key()] = it.value().value("n", int64_t{0});
                        }
                }
                json subs = json::object();
                for (const auto& [name, v] : sub_auroc) subs[name] = {{"n", sub_n[name]}, {"auroc", mean_of(v)}};
                fair[g] = {{"auroc_gap", mean_of(gap)},          {"auroc_gap_ci", mean_ci(gap_ci)},
                           {"underdiagnosis_gap", mean_of(ud)}, {"underdiagnosis_gap_ci", mean_ci(ud_ci)},
                           {"subgroups", subs}};
            }
            row["fairness"] = fair;
            json delong = json::object();  // seed-0 (first seed) p-values
            const json d = at_path(rs[0]["tests"][t.name], {"delong"});
            if (d.is_object())
                for (auto it = d.begin(); it != d.end(); ++it)
                    if (it.value().is_object() && it.value().contains("p_value")) delong[it.key()] = it.value()["p_value"];
            row["delong_p"] = delong;
            summary.push_back(row);
        }
    }
    // the real-data sweeps: strategies with more than one real_images value
    json sweep = json::array();
    for (const auto& s : config.strategies) {
        if (s.real_images.size() < 2 || (s.kind != "real" && s.kind != "pretrain_finetune")) continue;
        for (const auto& t : config.tests) {
            json points = json::array();
            for (const auto& row : summary)
                if (row["strategy"] == s.name && row["test"] == t.name)
                    points.push_back({{"real_images", row["real_images"]},
                                      {"macro_auroc", row["macro_auroc"]},
                                      {"macro_auroc_ci", row["macro_auroc_ci"]}});
            std::sort(points.begin(), points.end(),
                      [](const json& a, const json& b) { return a["real_images"] < b["real_images"]; });
            sweep.push_back({{"strategy", s.name}, {"test", t.name}, {"points", points}});
        }
    }
    // image samples: per finding × (sex, race), the first images of each set
    auto samples_of = [&](const std::vector<data::Record>& set) {
        json list = json::array();
        std::map<std::string, int64_t> taken;
        for (const auto& finding : config.sample_findings) {
            const int li = data::label_index(finding);
            if (li < 0) continue;
            for (const auto& r : set) {
                if (r.labels[static_cast<size_t>(li)] != data::LabelValue::positive) continue;
                const std::string cell = finding + "|" + attribute_key(r, {"sex", "race"});
                if (taken[cell] >= config.samples_per_cell) continue;
                ++taken[cell];
                list.push_back({{"path", fs::absolute(r.image_path).string()},
                                {"finding", finding},
                                {"sex", data::sex_code(r.sex)},
                                {"race", r.race == data::Race::other_unknown ? "" : data::race_name(r.race)},
                                {"age", r.has_age() ? json(r.age) : json(nullptr)}});
            }
        }
        return list;
    };
    json tests_j = json::array();
    for (size_t t = 0; t < config.tests.size(); ++t)
        tests_j.push_back({{"name", config.tests[t].name}, {"description", config.tests[t].description},
                           {"in_distribution", t == 0}, {"n", tests[t].size()}});
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    const json metrics_j = {
        {"format", "cxr-study"},
        {"version", 1},
        {"study", {{"name", config.name}, {"created", date}, {"config", config_json}, {"run", run_record()},
                   {"synthetic_source", {{"description", config.synthetic_description},
                                         {"stand_in", config.synthetic_stand_in}}}}},
        {"labels", labels},
        {"tests", tests_j},
        {"groupings", grouping_names},
        {"runs", runs_j},
        {"summary", summary},
        {"sweep", sweep},
        {"samples", {{"real", samples_of(real)}, {"synthetic", samples_of(synthetic)}}}};
    write_json_atomically(out / "metrics.json", metrics_j);
    result.report = (out / "report.html").string();
    write_study_report(metrics_j, result.report);
    result.complete = true;
    return result;
}

}  // namespace cxr::apps
