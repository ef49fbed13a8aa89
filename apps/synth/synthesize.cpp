// The demographically balanced synthetic dataset with demographic quality control (apps/synth/synthesize.h: the
// prompt designs, the seed rule, the acceptance rule, the outputs and the resume rule are documented there).
#include "apps/synth/synthesize.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "apps/config_json.h"
#include "apps/progress.h"
#include "apps/train/classifier_trainer.h"
#include "data/adapters/adapters.h"
#include "data/image_io.h"
#include "data/labels.h"
#include "data/loader.h"
#include "diffusion/pipeline.h"
#include "metrics/fairness.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::apps {

namespace fs = std::filesystem;
using nlohmann::json;
using tensor::Tensor;

// ---------------------------------------------------------------- config

namespace {

const std::vector<std::string>& synthesis_keys() {
    static const std::vector<std::string> k = {"model",  "source",      "design",      "images_per_prompt",
                                               "steps",  "guidance",    "scheduler",   "negative",
                                               "seed",   "max_retries", "qc",          "max_sources",
                                               "batch",  "device",      "variant",     "out",
                                               "name"};
    return k;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

const char* const kWhere = "synthesis config";

const std::array<const char*, 4> kRaceTargets = {"race:asian", "race:black", "race:hispanic", "race:white"};
const std::array<const char*, 4> kAgeTargets = {"age:18-40", "age:40-60", "age:60-80", "age:80+"};
const std::array<const char*, 4> kAgeBins = {"18-40", "40-60", "60-80", "80+"};

// The labels the classifier needs for one QC attribute.
std::vector<std::string> needed_labels(const std::string& attribute) {
    if (attribute == "sex") return {"sex:female"};
    if (attribute == "race") return {kRaceTargets.begin(), kRaceTargets.end()};
    return {kAgeTargets.begin(), kAgeTargets.end()};
}

}  // namespace

SynthesisConfig SynthesisConfig::from_json(const json& j, const std::string& base_dir) {
    check_known_keys(j, kWhere, synthesis_keys());
    SynthesisConfig c;
    read_key(j, "model", c.model, kWhere);
    c.model = resolve_config_path(c.model, base_dir);
    CXR_CHECK(j.contains("source"), "synthesis config: \"source\" (the records whose impressions are expanded) is "
                                    "required");
    c.source = DataSource::from_json(j.at("source"), "synthesis config: source", base_dir);
    read_key(j, "design", c.design, kWhere);
    read_key(j, "images_per_prompt", c.images_per_prompt, kWhere);
    read_key(j, "steps", c.steps, kWhere);
    read_key(j, "guidance", c.guidance, kWhere);
    read_key(j, "scheduler", c.scheduler, kWhere);
    read_key(j, "negative", c.negative, kWhere);
    read_key(j, "seed", c.seed, kWhere);
    read_key(j, "max_retries", c.max_retries, kWhere);
    if (j.contains("qc")) {
        const json& q = j.at("qc");
        CXR_CHECK(q.is_object(), "synthesis config: \"qc\" must be an object {classifier, attributes, on_failure}");
        for (auto it = q.begin(); it != q.end(); ++it)
            CXR_CHECK(it.key() == "classifier" || it.key() == "attributes" || it.key() == "on_failure",
                      "synthesis config: unknown key \"qc.", it.key(),
                      "\" (known: classifier, attributes, on_failure)");
        read_key(q, "classifier", c.qc.classifier, "synthesis config: qc");
        c.qc.classifier = resolve_config_path(c.qc.classifier, base_dir);
        read_key(q, "attributes", c.qc.attributes, "synthesis config: qc");
        read_key(q, "on_failure", c.qc.on_failure, "synthesis config: qc");
    }
    read_key(j, "max_sources", c.max_sources, kWhere);
    read_key(j, "batch", c.batch, kWhere);
    read_key(j, "device", c.device, kWhere);
    read_key(j, "variant", c.variant, kWhere);
    read_key(j, "out", c.out, kWhere);
    c.out = resolve_config_path(c.out, base_dir);
    read_key(j, "name", c.name, kWhere);
    c.validate();
    return c;
}

json SynthesisConfig::to_json() const {
    return {{"model", model},
            {"source", source.to_json()},
            {"design", design},
            {"images_per_prompt", images_per_prompt},
            {"steps", steps},
            {"guidance", guidance},
            {"scheduler", scheduler},
            {"negative", negative},
            {"seed", seed},
            {"max_retries", max_retries},
            {"qc", {{"classifier", qc.classifier}, {"attributes", qc.attributes}, {"on_failure", qc.on_failure}}},
            {"max_sources", max_sources},
            {"batch", batch},
            {"device", device},
            {"variant", variant},
            {"out", out},
            {"name", name}};
}

void SynthesisConfig::validate() const {
    CXR_CHECK(design == "balanced" || design == "uniform", "synthesis config: design must be \"balanced\" or "
                                                           "\"uniform\", got \"", design, "\"");
    CXR_CHECK(images_per_prompt >= 1, "synthesis config: images_per_prompt must be >= 1, got ", images_per_prompt);
    CXR_CHECK(steps >= 1, "synthesis config: steps must be >= 1, got ", steps);
    CXR_CHECK(std::isfinite(guidance), "synthesis config: guidance must be a finite number");
    static const std::vector<std::string> schedulers = {"default", "ddpm", "ddim", "pndm", "dpm"};
    CXR_CHECK(std::find(schedulers.begin(), schedulers.end(), scheduler) != schedulers.end(),
              "synthesis config: scheduler must be one of ", joined(schedulers), ", got \"", scheduler, "\"");
    CXR_CHECK(max_retries >= 0, "synthesis config: max_retries must be >= 0, got ", max_retries);
    CXR_CHECK(max_sources >= 0, "synthesis config: max_sources must be >= 0, got ", max_sources);
    CXR_CHECK(batch >= 1, "synthesis config: batch must be >= 1, got ", batch);
    tensor::parse_device(device);
    std::set<std::string> seen;
    for (const auto& a : qc.attributes) {
        CXR_CHECK(a == "sex" || a == "race" || a == "age", "synthesis config: unknown qc attribute \"", a,
                  "\" (known: sex, race, age)");
        CXR_CHECK(seen.insert(a).second, "synthesis config: qc attribute \"", a, "\" is listed twice");
    }
    CXR_CHECK(qc.on_failure == "keep" || qc.on_failure == "drop",
              "synthesis config: qc.on_failure must be \"keep\" or \"drop\", got \"", qc.on_failure, "\"");
}

uint64_t attempt_seed(const SynthesisConfig& c, int64_t item, int64_t copy, int64_t attempt) {
    const uint64_t k = static_cast<uint64_t>(item) * static_cast<uint64_t>(c.images_per_prompt) +
                       static_cast<uint64_t>(copy);
    return c.seed + k * static_cast<uint64_t>(c.max_retries + 1) + static_cast<uint64_t>(attempt);
}

// ---------------------------------------------------------------- QC rule

namespace {

int race_slot(data::Race r) {
    switch (r) {
        case data::Race::asian: return 0;
        case data::Race::black: return 1;
        case data::Race::hispanic: return 2;
        case data::Race::white: return 3;
        default: return -1;
    }
}

int age_slot(double age) {
    const std::string bin = metrics::age_bin(age);
    for (size_t b = 0; b < kAgeBins.size(); ++b)
        if (bin == kAgeBins[b]) return static_cast<int>(b);
    return -1;
}

// The prompt's class has the highest probability of its group (ties accept).
bool top_class(const std::array<double, 4>& p, int slot) {
    for (double v : p)
        if (v > p[static_cast<size_t>(slot)]) return false;
    return true;
}

}  // namespace

QcDecision qc_decide(const DemographicProbabilities& p, const data::PromptItem& item,
                     const std::vector<std::string>& attributes) {
    QcDecision d;
    for (const auto& a : attributes) {
        bool ok = true;
        if (a == "sex") {
            CXR_CHECK(p.female.has_value(), "quality control: no p(female) for the sex check");
            CXR_CHECK(item.sex != data::Sex::unknown, "quality control: the prompt has no sex: ", item.prompt);
            ok = (*p.female >= 0.5) == (item.sex == data::Sex::female);
        } else if (a == "race") {
            CXR_CHECK(p.race.has_value(), "quality control: no race probabilities for the race check");
            const int s = race_slot(item.race);
            CXR_CHECK(s >= 0, "quality control: the prompt has no race: ", item.prompt);
            ok = top_class(*p.race, s);
        } else if (a == "age") {
            CXR_CHECK(p.age.has_value(), "quality control: no age-bin probabilities for the age check");
            const int s = age_slot(item.age);
            CXR_CHECK(s >= 0, "quality control: the prompt's age ", item.age, " is in no age bin");
            ok = top_class(*p.age, s);
        } else {
            CXR_FAIL("quality control: unknown attribute \"", a, "\" (known: sex, race, age)");
        }
        if (!ok) {
            d.accepted = false;
            d.failed.push_back(a);
        }
    }
    return d;
}

// ---------------------------------------------------------------- prompts

std::vector<data::PromptItem> synthesis_prompts(const SynthesisConfig& c, const std::vector<data::Record>& sources_in,
                                                const data::TokenCounter& count, data::ExpansionStats* stats) {
    std::vector<data::Record> sources = sources_in;
    if (c.max_sources > 0 && static_cast<int64_t>(sources.size()) > c.max_sources)
        sources.resize(static_cast<size_t>(c.max_sources));
    data::ExpansionStats local;
    data::ExpansionStats& st = stats ? *stats : local;
    std::vector<data::PromptItem> items = c.design == "uniform"
                                              ? data::uniform_attribute_resampling(sources, c.seed, count, &st)
                                              : data::balanced_expansion(sources, c.seed, count, &st);
    CXR_CHECK(!items.empty(), "synthesize: no prompts: of ", sources.size(), " source record(s), ", st.skipped_no_age,
              " have no age and ", st.skipped_no_report, " no impression (report); the prompts need both");
    return items;
}

// ---------------------------------------------------------------- the run

namespace {

std::string image_name(int64_t item, int64_t copy) {
    char name[48];
    std::snprintf(name, sizeof name, "%06lld_%02lld.png", static_cast<long long>(item), static_cast<long long>(copy));
    return name;
}

json probabilities_json(const DemographicProbabilities& p) {
    json j = json::object();
    if (p.female) j["p_female"] = *p.female;
    if (p.race) {
        json r = json::object();
        for (size_t k = 0; k < 4; ++k) r[std::string(kRaceTargets[k]).substr(5)] = (*p.race)[k];
        j["p_race"] = r;
    }
    if (p.age) {
        json a = json::object();
        for (size_t k = 0; k < 4; ++k) a[kAgeBins[k]] = (*p.age)[k];
        j["p_age"] = a;
    }
    return j;
}

// Everything but the keys a resumed run may change.
json comparable(json j) {
    j.erase("batch");
    j.erase("out");
    j.erase("name");
    return j;
}

// The finished images of an earlier run: qc.jsonl lines by image number k = item · n + copy. Half-written lines and
// lines of kept images whose PNG is missing are left out, and the file is rewritten with the lines kept.
std::map<int64_t, json> load_finished(const fs::path& jsonl, const fs::path& out,
                                      const std::vector<data::PromptItem>& items, int64_t per_prompt) {
    std::map<int64_t, json> done;
    std::ifstream in(jsonl);
    if (!in) return done;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        json j;
        try {
            j = json::parse(line);
        } catch (const json::exception&) {
            continue;  // the half-written last line of a killed run
        }
        if (!j.is_object() || !j.contains("item") || !j.contains("copy") || !j.contains("kept")) continue;
        CXR_CHECK(j["item"].is_number_integer() && j["copy"].is_number_integer() && j["kept"].is_boolean(),
                  "cannot resume in '", out.string(), "': a line of ", jsonl.string(),
                  " has a non-integer item/copy or a non-boolean kept: ", line.substr(0, 120));
        const int64_t item = j["item"], copy = j["copy"];
        CXR_CHECK(item >= 0 && item < static_cast<int64_t>(items.size()) && copy >= 0 && copy < per_prompt,
                  "cannot resume in '", out.string(), "': ", jsonl.string(), " names image (", item, ", ", copy,
                  ") outside this run");
        CXR_CHECK(j.value("prompt", "") == items[static_cast<size_t>(item)].prompt, "cannot resume in '",
                  out.string(), "': the prompt of item ", item, " differs from the earlier run's (source changed?)");
        if (j["kept"].get<bool>() && !fs::exists(out / "images" / image_name(item, copy))) continue;
        done[item * per_prompt + copy] = j;
    }
    in.close();
    const fs::path tmp = jsonl.string() + ".tmp";
    {
        std::ofstream o(tmp, std::ios::trunc);
        for (const auto& kv : done) o << kv.second.dump() << "\n";
        CXR_CHECK(o.good(), "cannot write ", tmp.string());
    }
    fs::rename(tmp, jsonl);
    return done;
}

Tensor to_gray(const Tensor& image) {
    CXR_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
              "synthesize: the generator must return images [1 or 3, H, W], got ", tensor::shape_str(image.sizes()));
    Tensor x = tensor::cast(image, tensor::DType::f32);
    if (x.size(0) == 3) x = tensor::mean(x, {0}, true);  // [1, H, W]
    return x.contiguous();
}

void write_png_atomically(const fs::path& path, const Tensor& image) {
    const fs::path tmp = path.string() + ".tmp";
    data::write_png(tmp.string(), image);
    fs::rename(tmp, path);
}

struct Tally {
    int64_t images = 0, kept = 0, dropped = 0, accepted = 0, accepted_first = 0, qc_failed = 0, attempts = 0;
    std::map<std::string, int64_t> failed_checks;
    void add(const json& r) {
        ++images;
        const bool acc = r["accepted"], kp = r["kept"];
        kept += kp;
        dropped += !kp;
        accepted += acc;
        qc_failed += !acc;
        attempts += static_cast<int64_t>(r["attempts"].size());
        if (acc && r["attempts"].size() == 1) ++accepted_first;
        for (const auto& a : r["attempts"])
            for (const auto& f : a["failed"]) ++failed_checks[f.get<std::string>()];
    }
    json to_json() const {
        auto rate = [](int64_t a, int64_t b) { return b > 0 ? json(static_cast<double>(a) / b) : json(nullptr); };
        json f = json::object();
        for (const auto& kv : failed_checks) f[kv.first] = kv.second;
        return {{"images", images},
                {"kept", kept},
                {"dropped", dropped},
                {"accepted", accepted},
                {"accepted_first_attempt", accepted_first},
                {"qc_failed", qc_failed},
                {"attempts", attempts},
                {"acceptance_rate", rate(accepted, images)},
                {"first_attempt_acceptance_rate", rate(accepted_first, images)},
                {"attempt_acceptance_rate", rate(accepted, attempts)},
                {"failed_checks", f}};
    }
};

}  // namespace

SynthesisResult synthesize(const SynthesisConfig& config, const std::vector<data::Record>& sources,
                           const ImageGenerator& generate, const QcCallback& qc,
                           const SynthesisProgressCallback& progress, const data::TokenCounter& count) {
    config.validate();
    CXR_CHECK(!config.out.empty(), "synthesize: no output folder (\"out\")");
    CXR_CHECK(static_cast<bool>(generate), "synthesize: no image generator");
    CXR_CHECK(!config.qc.enabled() || static_cast<bool>(qc), "synthesize: qc.attributes (",
              joined(config.qc.attributes), ") need a QC callback (a demographic classifier)");

    SynthesisResult result;
    const std::vector<data::PromptItem> items = synthesis_prompts(config, sources, count, &result.expansion);
    // The source records as expanded (max_sources applied), for split, view and patient id.
    const int64_t n = config.images_per_prompt;
    const int64_t total = static_cast<int64_t>(items.size()) * n;
    result.images = total;

    const fs::path out(config.out), images_dir = out / "images", jsonl = out / "qc.jsonl";
    fs::create_directories(images_dir);
    const json config_json = config.to_json();
    if (fs::exists(out / "config.json")) {
        const json saved = read_json_file((out / "config.json").string(), "cannot resume in '" + out.string() + "'",
                                          "its config");
        CXR_CHECK(comparable(saved) == comparable(config_json), "cannot resume in '", out.string(),
                  "': it was made with another config: ",
                  config_differences(comparable(saved), comparable(config_json)),
                  ". Use another output folder or the same config.");
    }
    write_json_atomically(out / "config.json", config_json);

    std::map<int64_t, json> finished = load_finished(jsonl, out, items, n);
    result.resumed = static_cast<int64_t>(finished.size());
    int64_t accepted_so_far = 0;
    for (const auto& kv : finished) accepted_so_far += kv.second["accepted"].get<bool>();

    struct Job {
        int64_t k = 0, attempt = 0;
        json attempts = json::array();
    };
    std::vector<int64_t> pending;
    for (int64_t k = 0; k < total; ++k)
        if (!finished.count(k)) pending.push_back(k);
    size_t next_pending = 0;
    std::vector<Job> active;
    std::ofstream log(jsonl, std::ios::app);
    CXR_CHECK(log.good(), "synthesize: cannot write ", jsonl.string());
    SynthesisProgress prog;
    prog.total = total;
    prog.done = static_cast<int64_t>(finished.size());
    prog.accepted = accepted_so_far;
    if (progress) progress(prog);

    while (next_pending < pending.size() || !active.empty()) {
        // Fill the round with the next unfinished images; a rejected image stays in the round with its next attempt.
        while (static_cast<int64_t>(active.size()) < config.batch && next_pending < pending.size())
            active.push_back(Job{pending[next_pending++], 0, json::array()});
        std::vector<ImageRequest> requests;
        for (const Job& job : active) {
            ImageRequest r;
            r.item = job.k / n;
            r.copy = job.k % n;
            r.attempt = job.attempt;
            r.seed = attempt_seed(config, r.item, r.copy, r.attempt);
            r.prompt = items[static_cast<size_t>(r.item)].prompt;
            requests.push_back(r);
        }
        const std::vector<Tensor> images = generate(requests);
        CXR_CHECK(images.size() == requests.size(), "synthesize: the generator returned ", images.size(),
                  " images for ", requests.size(), " requests");
        std::vector<DemographicProbabilities> probs;
        if (config.qc.enabled()) {
            probs = qc(images, requests);
            CXR_CHECK(probs.size() == requests.size(), "synthesize: the QC returned ", probs.size(), " results for ",
                      requests.size(), " images");
        }
        prog.attempts += static_cast<int64_t>(requests.size());
        result.drawn += static_cast<int64_t>(requests.size());

        std::vector<Job> still;
        for (size_t b = 0; b < active.size(); ++b) {
            Job& job = active[b];
            const ImageRequest& req = requests[b];
            const data::PromptItem& it = items[static_cast<size_t>(req.item)];
            QcDecision d;
            json attempt = {{"attempt", req.attempt}, {"seed", req.seed}};
            if (config.qc.enabled()) {
                d = qc_decide(probs[b], it, config.qc.attributes);
                attempt.update(probabilities_json(probs[b]));
            }
            attempt["accepted"] = d.accepted;
            attempt["failed"] = d.failed;
            job.attempts.push_back(attempt);
            const bool last = req.attempt >= config.max_retries;
            if (!d.accepted && !last) {
                ++job.attempt;
                still.push_back(job);
                continue;
            }
            const bool kept = d.accepted || config.qc.on_failure == "keep";
            const std::string name = image_name(req.item, req.copy);
            if (kept) write_png_atomically(images_dir / name, to_gray(images[b]));
            const std::string bin = metrics::age_bin(it.age);
            const json rec = {{"item", req.item},
                              {"copy", req.copy},
                              {"prompt", it.prompt},
                              {"sex", data::sex_code(it.sex)},
                              {"race", data::race_name(it.race)},
                              {"age", it.age},
                              {"age_bin", bin},
                              {"source", it.source},
                              {"seed", req.seed},
                              {"accepted", d.accepted},
                              {"kept", kept},
                              {"path", kept ? json("images/" + name) : json(nullptr)},
                              {"attempts", job.attempts}};
            log << rec.dump() << "\n";
            log.flush();
            CXR_CHECK(log.good(), "synthesize: cannot append to ", jsonl.string());
            finished[job.k] = rec;
            ++prog.done;
            prog.accepted += d.accepted;
            if (progress) progress(prog);
        }
        active = std::move(still);
    }
    log.close();

    // Manifest and summary over every finished image (this run's and the earlier ones'), in (item, copy) order.
    std::vector<data::Record> sources_used = sources;
    if (config.max_sources > 0 && static_cast<int64_t>(sources_used.size()) > config.max_sources)
        sources_used.resize(static_cast<size_t>(config.max_sources));
    std::vector<data::Record> records;
    Tally all;
    std::map<std::string, Tally> by_group;
    json failures = json::array();
    for (const auto& [k, rec] : finished) {
        const int64_t item = k / n, copy = k % n;
        const data::PromptItem& it = items[static_cast<size_t>(item)];
        all.add(rec);
        by_group[data::sex_code(it.sex) + "+" + data::race_name(it.race)].add(rec);
        if (!rec["accepted"].get<bool>())
            failures.push_back({{"item", item}, {"copy", copy}, {"prompt", it.prompt},
                                {"attempts", rec["attempts"].size()}, {"kept", rec["kept"]}});
        if (!rec["kept"].get<bool>()) continue;
        const data::Record& src = sources_used.at(it.source);
        data::Record r;
        r.image_path = (images_dir / image_name(item, copy)).string();
        r.patient_id = "synthetic_" + (src.patient_id.empty() ? "src" + std::to_string(it.source) : src.patient_id);
        r.study_id = std::to_string(item) + "_" + std::to_string(copy);
        r.split = src.split.empty() ? "train" : src.split;
        r.view = src.view;
        r.sex = it.sex;
        r.age = it.age;
        r.race = it.race;
        r.labels = it.labels;
        r.report = it.prompt;
        r.dataset = "synthetic";
        r.site = "synthetic";
        records.push_back(r);
    }
    result.manifest = (out / "manifest.csv").string();
    data::write_manifest(result.manifest, records);

    json groups = json::object();
    for (const auto& [name, t] : by_group) groups[name] = t.to_json();
    json summary = all.to_json();
    summary["planned"] = total;
    summary["complete"] = static_cast<int64_t>(finished.size()) == total;
    summary["attributes"] = config.qc.attributes;
    summary["classifier"] = config.qc.classifier;
    summary["max_retries"] = config.max_retries;
    summary["on_failure"] = config.qc.on_failure;
    summary["by_subgroup"] = groups;
    summary["failures"] = failures;
    write_json_atomically(out / "qc.json", summary);
    write_json_atomically(out / "run.json",
                          {{"run", run_record()},
                           {"prompts", items.size()},
                           {"expansion",
                            {{"sources", result.expansion.sources},
                             {"skipped_no_age", result.expansion.skipped_no_age},
                             {"skipped_no_report", result.expansion.skipped_no_report},
                             {"shortened", result.expansion.shortened}}},
                           {"resumed_images", result.resumed},
                           {"attempts_drawn", result.drawn}});

    result.kept = all.kept;
    result.dropped = all.dropped;
    result.accepted = all.accepted;
    result.qc_failed = all.qc_failed;
    result.attempts = all.attempts;
    result.qc = summary;
    return result;
}

SynthesisResult synthesize(const SynthesisConfig& config, const ImageGenerator& generate, const QcCallback& qc,
                           const SynthesisProgressCallback& progress, const data::TokenCounter& count) {
    return synthesize(config, load_source(config.source), generate, qc, progress, count);
}

// ---------------------------------------------------------------- real components

void check_qc_classifier(const ClassifierConfig& classifier, const std::vector<std::string>& attributes,
                         const std::string& stem) {
    const std::vector<std::string> have = classifier.label_names();
    std::vector<std::string> missing;
    for (const auto& a : attributes)
        for (const auto& l : needed_labels(a))
            if (std::find(have.begin(), have.end(), l) == have.end()) missing.push_back(l);
    CXR_CHECK(missing.empty(), "quality control: the classifier '", stem, "' lacks the demographic target(s) ",
              joined(missing), " that the checked attributes (", joined(attributes), ") need; its labels are ",
              joined(have), " (train one with these labels: apps/train/classifier_trainer.h)");
}

QcCallback make_classifier_qc(const std::string& stem, const std::vector<std::string>& attributes,
                              const std::string& device) {
    ClassifierConfig cc = checkpoint_config(stem);
    cc.device = device;
    check_qc_classifier(cc, attributes, stem);
    auto model = load_classifier(stem, cc);
    const std::vector<std::string> names = cc.label_names();
    auto column = [&](const std::string& l) {
        return static_cast<int64_t>(std::find(names.begin(), names.end(), l) - names.begin());
    };
    const bool want_sex = std::find(attributes.begin(), attributes.end(), "sex") != attributes.end();
    const bool want_race = std::find(attributes.begin(), attributes.end(), "race") != attributes.end();
    const bool want_age = std::find(attributes.begin(), attributes.end(), "age") != attributes.end();
    const int64_t sex_col = want_sex ? column("sex:female") : -1;
    std::array<int64_t, 4> race_cols{}, age_cols{};
    for (size_t k = 0; k < 4; ++k) {
        race_cols[k] = want_race ? column(kRaceTargets[k]) : -1;
        age_cols[k] = want_age ? column(kAgeTargets[k]) : -1;
    }
    return [model, cc, sex_col, race_cols, age_cols, want_race, want_age](
               const std::vector<Tensor>& images, const std::vector<ImageRequest>&) {
        const int S = cc.image_size, C = cc.channels;
        const int64_t B = static_cast<int64_t>(images.size());
        std::vector<float> batch;
        batch.reserve(static_cast<size_t>(B * C * S * S));
        for (const Tensor& image : images) {
            // gray [1, H, W], quantised as the 8-bit PNG stores it, then the loader's resize
            std::vector<float> px = to_gray(image).to_vector<float>();
            for (float& v : px) v = std::round(std::clamp(v, 0.0f, 1.0f) * 255.0f) / 255.0f;
            const Tensor gray = tensor::from_vector(px, {1, image.size(1), image.size(2)});
            const std::vector<float> r = data::resize_image(gray, S, S).contiguous().to_vector<float>();  // [1, S, S]
            for (int c = 0; c < C; ++c) batch.insert(batch.end(), r.begin(), r.end());
        }
        const Tensor x = tensor::from_vector(batch, {B, C, S, S});
        const std::vector<float> p = score_images(*model, cc, x).to_vector<float>();  // [B, L]
        const int64_t L = static_cast<int64_t>(cc.label_names().size());
        std::vector<DemographicProbabilities> out(static_cast<size_t>(B));
        for (int64_t b = 0; b < B; ++b) {
            auto at = [&](int64_t col) { return static_cast<double>(p[static_cast<size_t>(b * L + col)]); };
            DemographicProbabilities& d = out[static_cast<size_t>(b)];
            if (sex_col >= 0) d.female = at(sex_col);
            if (want_race) d.race = std::array<double, 4>{at(race_cols[0]), at(race_cols[1]), at(race_cols[2]),
                                                          at(race_cols[3])};
            if (want_age) d.age = std::array<double, 4>{at(age_cols[0]), at(age_cols[1]), at(age_cols[2]),
                                                        at(age_cols[3])};
        }
        return out;
    };
}

ImageGenerator make_pipeline_generator(diffusion::StableDiffusionPipeline& pipe, const SynthesisConfig& config) {
    const int64_t steps = config.steps;
    const double guidance = config.guidance;
    const std::string negative = config.negative;
    return [&pipe, steps, guidance, negative](const std::vector<ImageRequest>& requests) {
        diffusion::GenerateOptions g;
        for (const ImageRequest& r : requests) {
            g.prompts.push_back(r.prompt);
            g.seeds.push_back(r.seed);
        }
        if (!negative.empty()) g.negative_prompts.assign(g.prompts.size(), negative);
        g.num_inference_steps = steps;
        g.guidance_scale = guidance;
        const diffusion::GenerateResult res = pipe.generate(g);  // images [B, 3, H, W] in [0, 1], CPU
        std::vector<Tensor> out;
        for (size_t i = 0; i < requests.size(); ++i)
            out.push_back(to_gray(tensor::select(res.images, 0, static_cast<int64_t>(i))));  // [1, H, W]
        return out;
    };
}

}  // namespace cxr::apps
