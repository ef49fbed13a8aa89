// `cxr synthesize --config FILE [--out DIR]`: the demographically balanced synthetic chest X-ray set of
// RoentGen-v2 with demographic quality control (apps/synth/synthesize.h documents the config keys, the prompt
// designs, the seed rule, the acceptance rule and every output). Loads the Stable Diffusion pipeline folder of
// "model" (its CLIP tokenizer also fits the prompts to 77 tokens) and, when qc.attributes is non-empty, the
// demographic classifier checkpoint of qc.classifier; shows a progress bar of finished images and how many passed
// QC; a killed run resumes where it stopped.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/config_json.h"
#include "apps/progress.h"
#include "apps/synth/synthesize.h"
#include "diffusion/pipeline.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace cxr::apps {

namespace fs = std::filesystem;

namespace {

std::optional<diffusion::SchedulerKind> scheduler_kind(const std::string& s) {
    if (s == "default") return std::nullopt;
    if (s == "ddpm") return diffusion::SchedulerKind::ddpm;
    if (s == "ddim") return diffusion::SchedulerKind::ddim;
    if (s == "pndm") return diffusion::SchedulerKind::pndm;
    if (s == "dpm") return diffusion::SchedulerKind::dpm_solver_multistep;
    CXR_FAIL("cxr synthesize: unknown scheduler \"", s, "\" (use default, ddpm, ddim, pndm or dpm)");
}

}  // namespace

int cmd_synthesize(int argc, char** argv) {
    Args args("synthesize",
              "Builds a demographically balanced synthetic set (RoentGen-v2): every source impression becomes prompts\n"
              "for all 8 sex x race combinations (or uniformly drawn ones) with a jittered age; each image is checked\n"
              "by a demographic classifier and redrawn with a new seed when its predicted sex / race / age group\n"
              "disagrees with the prompt. Writes images/, manifest.csv, qc.json, qc.jsonl, config.json and run.json.\n"
              "The config keys are documented in apps/synth/synthesize.h; a killed run resumes where it stopped.",
              {{"config", "FILE", "the JSON config (required)", ""},
               {"out", "DIR", "output folder (overrides the config's \"out\")", ""},
               {"device", "DEV", "cpu or cuda[:n] (overrides the config's \"device\")", ""},
               {"quiet", "", "no progress bar", ""}});
    if (!args.parse(argc, argv)) return 0;
    const std::string config_path = args.get("config");
    CXR_CHECK(!config_path.empty(), "cxr synthesize: --config FILE is required (see cxr synthesize --help)");
    nlohmann::json cfg = read_json_file(config_path, "cxr synthesize", "config");
    if (cfg.is_object() && !args.get("device").empty()) cfg["device"] = args.get("device");
    SynthesisConfig config = SynthesisConfig::from_json(cfg, fs::path(config_path).parent_path().string());
    if (!args.get("out").empty()) config.out = args.get("out");
    CXR_CHECK(!config.out.empty(), "cxr synthesize: no output folder (--out DIR or \"out\" in the config)");
    CXR_CHECK(!config.model.empty(), "cxr synthesize: \"model\" (the Stable Diffusion pipeline folder) is required");
    CXR_CHECK(!config.qc.enabled() || !config.qc.classifier.empty(),
              "cxr synthesize: qc.attributes need qc.classifier (a demographic classifier checkpoint stem)");

    // The classifier first: a missing demographic target is reported before the (slow) pipeline load.
    QcCallback qc;
    if (config.qc.enabled()) qc = make_classifier_qc(config.qc.classifier, config.qc.attributes, config.device);

    diffusion::PipelineLoadOptions lo;
    lo.variant = config.variant;
    lo.device = tensor::parse_device(config.device);
    lo.scheduler = scheduler_kind(config.scheduler);
    diffusion::StableDiffusionPipeline pipe = diffusion::StableDiffusionPipeline::load(config.model, lo);
    const ImageGenerator generate = make_pipeline_generator(pipe, config);

    const std::vector<data::Record> sources = load_source(config.source);
    std::cout << "cxr synthesize: " << sources.size() << " source record(s) from " << config.source.describe()
              << ", design " << config.design << ", " << config.images_per_prompt << " image(s) per prompt, "
              << config.steps << " steps, guidance " << config.guidance << ", QC "
              << (config.qc.enabled() ? "on" : "off") << ", up to " << config.max_retries << " retries" << std::endl;

    const bool quiet = args.flag("quiet");
    std::unique_ptr<Progress> bar;
    const SynthesisProgressCallback progress = [&](const SynthesisProgress& p) {
        if (quiet) return;
        if (!bar) {
            bar = std::make_unique<Progress>("synthesize", p.total);
            if (p.done > 0) std::cout << "resuming: " << p.done << " image(s) already finished" << std::endl;
        }
        bar->update(p.done, "accepted " + std::to_string(p.accepted) + "/" + std::to_string(p.done) + ", " +
                                std::to_string(p.attempts) + " attempts");
    };
    const SynthesisResult r = synthesize(config, sources, generate, qc, progress, pipe.tokenizer->token_counter());
    if (bar) bar->finish();
    std::cout << "wrote " << r.kept << " image(s) (" << r.accepted << " accepted, " << r.qc_failed << " failed QC, "
              << r.dropped << " dropped; " << r.attempts << " attempts) to "
              << (fs::path(config.out) / "images").string()
              << ", " << r.manifest << " and " << (fs::path(config.out) / "qc.json").string() << "\n";
    return 0;
}

}  // namespace cxr::apps
