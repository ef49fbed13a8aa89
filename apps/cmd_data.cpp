// `cxr data`: dataset tools. `cxr data inspect` reads a dataset through its adapter (data/adapters/adapters.h)
// and prints counts by split, sex, age bin, race, view and label as JSON; `cxr data phantom` writes the built-in
// phantom dataset (data/phantom.h) as PNGs plus a generic manifest (data/README.md); `cxr phantom` is the same
// command under the top-level name.
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/progress.h"
#include "data/adapters/adapters.h"
#include "data/labels.h"
#include "data/phantom.h"
#include "data/select.h"
#include "tensor/error.h"

namespace cxr::apps {

namespace {

std::vector<double> parse_numbers(const std::string& text, size_t expected, const std::string& option) {
    std::vector<double> out;
    for (const auto& part : data::split_string(text, ',')) {
        try {
            size_t used = 0;
            out.push_back(std::stod(data::trim(part), &used));
            CXR_CHECK(used == data::trim(part).size(), "");
        } catch (const std::exception&) {
            CXR_FAIL("--", option, ": '", part, "' is not a number");
        }
    }
    CXR_CHECK(out.size() == expected, "--", option, " needs ", expected, " comma-separated numbers, got ", out.size());
    return out;
}

nlohmann::json summary_json(const data::DatasetSummary& s) {
    nlohmann::json j;
    j["images"] = s.images;
    j["patients"] = s.patients;
    j["split"] = s.by_split;
    j["sex"] = s.by_sex;
    j["age_bin"] = s.by_age_bin;
    j["age_range"] = {s.age_min, s.age_max};
    j["race"] = s.by_race;
    j["view"] = s.by_view;
    j["dataset"] = s.by_dataset;
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [name, c] : s.labels)
        labels[name] = {{"negative", c[0]}, {"positive", c[1]}, {"uncertain", c[2]}, {"unknown", c[3]}};
    j["labels"] = labels;
    j["source_findings"] = s.source_findings;
    return j;
}

int data_inspect(int argc, char** argv) {
    Args args("data inspect",
              "Reads a dataset through its adapter and prints counts by split, sex, age bin, race, view and label as\n"
              "JSON. Formats and harmonisation rules: data/README.md, data/adapters/adapters.h, data/labels.h.",
              {{"dataset", "KIND", "nih, chexpert, chexpert-plus, mimic, padchest, vindr or manifest (required)", ""},
               {"root", "DIR", "the dataset folder (manifest: the folder holding manifest.csv, or the CSV itself)",
                ""},
               {"demographics", "CSV", "chexpert(-plus): CSV export of the CHEXPERT DEMO sheet (race)", ""},
               {"uncertainty", "POLICY", "chexpert(-plus), mimic: keep, zeros (U-zeros), ones (U-ones) or ignore",
                "keep"},
               {"patients", "CSV", "mimic: MIMIC-IV patients.csv(.gz) (default: in --root when present)", ""},
               {"admissions", "CSV", "mimic: MIMIC-IV admissions.csv(.gz) (race/ethnicity; default: in --root)", ""},
               {"csv", "CSV",
                "chexpert-plus: df_chexpert_plus*.csv; padchest: the PADCHEST labels CSV; manifest: the file", ""},
               {"min-votes", "N", "vindr: readers needed for a positive finding (0: strict majority)", "0"},
               {"frontal", "", "keep frontal (PA/AP) images only", ""},
               {"pa-only", "", "keep PA images only", ""},
               {"resplit", "TR,VA,TE", "replace the splits by a patient-disjoint split with these fractions", ""},
               {"seed", "S", "seed of --resplit", "0"},
               {"out", "FILE.json", "also write the JSON (with a run record: commit, build, date) to this file", ""}});
    if (!args.parse(argc, argv)) return 0;
    const std::string kind = args.get("dataset"), root = args.get("root");
    CXR_CHECK(!kind.empty(), "cxr data inspect: --dataset is required (see --help)");
    CXR_CHECK(!root.empty(), "cxr data inspect: --root is required (see --help)");
    std::map<std::string, std::string> opts;
    auto pass = [&](const char* key, const char* default_value) {
        const std::string v = args.get(key);
        if (!v.empty() && v != default_value) opts[key] = v;
    };
    pass("demographics", "");
    pass("uncertainty", "keep");
    pass("patients", "");
    pass("admissions", "");
    pass("csv", "");
    pass("min-votes", "0");
    std::vector<data::Record> records = data::load_dataset(kind, root, opts);
    if (args.flag("pa-only"))
        records = data::filter_frontal(records, true);
    else if (args.flag("frontal"))
        records = data::filter_frontal(records, false);
    if (!args.get("resplit").empty()) {
        const auto f = parse_numbers(args.get("resplit"), 3, "resplit");
        data::assign_patient_splits(records, {f[0], f[1], f[2]}, (uint64_t)args.get_int("seed"));
    }
    nlohmann::json j = summary_json(data::summarize(records));
    j["kind"] = kind;
    j["root"] = root;
    j["patients_in_several_splits"] = data::patients_in_several_splits(records).size();
    std::cout << j.dump(2) << "\n";
    if (!args.get("out").empty()) {
        j["run"] = run_record();  // git commit, build, date: in the file only, so stdout stays deterministic
        write_json_atomically(args.get("out"), j);
    }
    return 0;
}

// `cxr phantom` and `cxr data phantom`: one code path, `name` is the command as the user typed it.
int phantom_command(const std::string& name, int argc, char** argv) {
    Args args(name,
              "Writes the built-in phantom chest-radiograph dataset: DIR/images/phantom_<i>.png (8-bit gray),\n"
              "DIR/manifest.csv (generic manifest, data/README.md), DIR/summary.json and DIR/run.json.\n"
              "Deterministic by --seed. Anatomy, findings, demographic and site effects: data/phantom.h.",
              {{"out", "DIR", "output folder (required)", ""},
               {"n", "N", "number of images", "1000"},
               {"size", "S", "image side in pixels, 32..512", "64"},
               {"seed", "K", "seed of all random draws", "0"},
               {"sites", "N", "acquisition sites site_0..site_<N-1> (1..8), drawn with equal probability", "2"},
               {"female-fraction", "X", "probability of a female patient", "0.5"},
               {"race-weights", "A,B,H,W", "relative frequencies of Asian, Black, Hispanic, White", "1,1,1,1"},
               {"age-range", "MIN,MAX", "ages drawn uniformly in this range", "18,90"},
               {"prevalence", "P1,...,P7",
                "prevalence of Cardiomegaly, Pleural Effusion, Consolidation, Edema, Atelectasis, Pneumothorax, "
                "Lung Lesion",
                "0.15,0.15,0.12,0.10,0.10,0.08,0.08"},
               {"female-prevalence-factor", "X", "multiplies every prevalence for female patients (imbalance)", "1"},
               {"splits", "TR,VA,TE", "patient split fractions (one image per patient)", "0.7,0.1,0.2"}});
    if (!args.parse(argc, argv)) return 0;
    const std::string out = args.get("out");
    CXR_CHECK(!out.empty(), "cxr ", name, ": --out is required (see --help)");
    data::PhantomOptions o;
    o.n = args.get_int("n");
    o.size = (int)args.get_int("size");
    o.seed = (uint64_t)args.get_int("seed");
    o.sites = (int)args.get_int("sites");
    o.female_fraction = args.get_double("female-fraction");
    const auto rw = parse_numbers(args.get("race-weights"), 4, "race-weights");
    for (int k = 0; k < 4; ++k) o.race_weights[k] = rw[k];
    const auto ar = parse_numbers(args.get("age-range"), 2, "age-range");
    o.age_min = ar[0];
    o.age_max = ar[1];
    o.prevalence = parse_numbers(args.get("prevalence"), 7, "prevalence");
    o.female_prevalence_factor = args.get_double("female-prevalence-factor");
    const auto sp = parse_numbers(args.get("splits"), 3, "splits");
    o.train = sp[0];
    o.valid = sp[1];
    o.test = sp[2];

    Progress bar("phantom", o.n);
    const auto t0 = std::chrono::steady_clock::now();
    const auto records = data::write_phantom_dataset(out, o, [&](int64_t done) { bar.update(done); });
    bar.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json summary = summary_json(data::summarize(records));
    write_json_atomically(std::filesystem::path(out) / "summary.json", summary);
    nlohmann::json run = run_record();
    run["command"] = name;
    run["config"] = {{"n", o.n},         {"size", o.size},       {"seed", o.seed},
                     {"sites", o.sites}, {"female_fraction", o.female_fraction},
                     {"race_weights", rw}, {"age_range", ar},    {"prevalence", o.prevalence},
                     {"female_prevalence_factor", o.female_prevalence_factor}, {"splits", sp}};
    run["seconds"] = seconds;
    run["images_per_second"] = seconds > 0 ? (double)o.n / seconds : 0.0;
    write_json_atomically(std::filesystem::path(out) / "run.json", run);
    std::cout << "wrote " << o.n << " images and " << (std::filesystem::path(out) / "manifest.csv").string() << " ("
              << (seconds > 0 ? (double)o.n / seconds : 0.0) << " images/s)\n";
    return 0;
}

}  // namespace

int cmd_data(int argc, char** argv) {
    const std::string usage =
        "usage: cxr data <inspect|phantom> [options]\n\n"
        "  inspect   read a dataset (nih, chexpert, chexpert-plus, mimic, padchest, vindr, manifest) and print\n"
        "            counts as JSON\n"
        "  phantom   write the built-in phantom chest-radiograph dataset (PNGs + manifest)\n\n"
        "Run `cxr data <tool> --help` for its options.\n";
    if (argc < 1) {
        std::cerr << usage;
        return 2;
    }
    const std::string tool = argv[0];
    if (tool == "--help" || tool == "-h" || tool == "help") {
        std::cout << usage;
        return 0;
    }
    if (tool == "inspect") return data_inspect(argc - 1, argv + 1);
    if (tool == "phantom") return phantom_command("data phantom", argc - 1, argv + 1);
    std::cerr << "cxr data: unknown tool '" << tool << "'\n" << usage;
    return 2;
}

int cmd_phantom(int argc, char** argv) { return phantom_command("phantom", argc, argv); }

}  // namespace cxr::apps
