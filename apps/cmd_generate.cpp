// `cxr generate`: text-to-image with a Stable Diffusion pipeline folder (diffusers' layout; diffusion/pipeline.h).
// Image k (prompt p = k div n, copy j = k mod n, for n images per prompt) starts from the Philox noise of seed
// (--seed + k), so any image can be regenerated alone, a batch gives the images generated one by one, and a killed
// run resumes: images whose PNG exists are kept and skipped, after checking that the settings that decide the images
// (model, prompts, steps, guidance, scheduler, seed, size, ...) equal the recorded ones. Outputs under --out:
//   images/<k, 6 digits>.png   8-bit RGB (or grayscale with --grayscale: the mean of the three channels)
//   manifest.csv               the generic manifest (data/README.md): path, report = the prompt, dataset "synthetic",
//                              and age / race / sex when the prompt starts "<AGE> year old <RACE> <SEX>."
//   generate.json              written first with "status": "running" and the settings, then at the end with the
//                              pipeline's files, each image's prompt and seed and the run record ("complete")
// Every file is written under a temporary name and renamed, so an interrupted run leaves no half-written image.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/config_json.h"
#include "apps/progress.h"
#include "data/adapters/adapters.h"
#include "data/image_io.h"
#include "data/prompts.h"
#include "diffusion/pipeline.h"
#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::apps {

namespace fs = std::filesystem;

namespace {

std::optional<diffusion::SchedulerKind> parse_scheduler_option(const std::string& s) {
    if (s.empty() || s == "default") return std::nullopt;
    if (s == "ddpm") return diffusion::SchedulerKind::ddpm;
    if (s == "ddim") return diffusion::SchedulerKind::ddim;
    if (s == "pndm") return diffusion::SchedulerKind::pndm;
    if (s == "dpm" || s == "dpm++" || s == "dpmsolver") return diffusion::SchedulerKind::dpm_solver_multistep;
    CXR_FAIL("cxr generate: unknown --scheduler \"", s, "\" (use default, ddpm, ddim, pndm or dpm)");
}

std::vector<std::string> read_prompt_file(const std::string& path) {
    std::ifstream in(path);
    CXR_CHECK(in.good(), "cxr generate: cannot read the prompts file ", path);
    std::vector<std::string> prompts;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are skipped
        prompts.push_back(line);
    }
    CXR_CHECK(!prompts.empty(), "cxr generate: ", path, " has no prompts (one per line)");
    return prompts;
}

void write_png_atomically(const fs::path& path, const tensor::Tensor& image) {
    const fs::path tmp = path.string() + ".tmp";
    data::write_png(tmp.string(), image);
    fs::rename(tmp, path);
}

}  // namespace

int cmd_generate(int argc, char** argv) {
    // --prompt may be repeated; collect those before the common parser sees the rest.
    std::vector<std::string> prompts;
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--prompt") {
            CXR_CHECK(i + 1 < argc, "cxr generate: --prompt needs a value");
            prompts.push_back(argv[++i]);
        } else if (a.rfind("--prompt=", 0) == 0) {
            prompts.push_back(a.substr(9));
        } else {
            rest.push_back(argv[i]);
        }
    }
    Args args("generate",
              "Text-to-image with a Stable Diffusion pipeline folder (diffusers' layout: model_index.json, unet/, vae/,\n"
              "text_encoder/, tokenizer/, scheduler/), with classifier-free guidance. Image k starts from seed + k, so\n"
              "a killed run resumes where it stopped. Prompts look like \"66 year old white female. <impression>\".",
              {{"model", "DIR", "the pipeline folder (required)", ""},
               {"prompt", "TEXT", "a prompt; repeatable", ""},
               {"prompts", "FILE", "a text file with one prompt per line", ""},
               {"negative", "TEXT", "the negative prompt of every image (default: the empty prompt)", ""},
               {"images-per-prompt", "N", "images generated for each prompt", "1"},
               {"steps", "N", "denoising steps", "50"},
               {"guidance", "G", "classifier-free guidance scale (1: none)", "7.5"},
               {"guidance-rescale", "PHI", "rescale of the guided prediction (Lin et al. 2023), 0..1", "0"},
               {"scheduler", "NAME", "default (the folder's), ddpm, ddim, pndm or dpm (DPM-Solver++)", "default"},
               {"eta", "ETA", "DDIM's eta (0: deterministic)", "0"},
               {"seed", "S", "seed of image 0; image k uses seed + k", "0"},
               {"height", "H", "image height (default: the UNet's sample size times the VAE's factor)", "0"},
               {"width", "W", "image width (default: as the height)", "0"},
               {"batch", "B", "images denoised together", "1"},
               {"variant", "NAME", "weight variant to read, e.g. fp16 (components without it use their plain files)", ""},
               {"device", "DEV", "cpu or cuda[:n]", "cpu"},
               {"grayscale", "", "write 8-bit grayscale PNGs (the mean of the RGB channels), as chest films are", ""},
               {"quiet", "", "no progress bar", ""},
               {"out", "DIR", "output folder (required)", ""}});
    if (!args.parse((int)rest.size(), rest.data())) return 0;
    const std::string model_dir = args.get("model"), out_dir = args.get("out");
    CXR_CHECK(!model_dir.empty(), "cxr generate: --model is required (see cxr generate --help)");
    CXR_CHECK(!out_dir.empty(), "cxr generate: --out is required (see cxr generate --help)");
    if (!args.get("prompts").empty()) {
        const auto more = read_prompt_file(args.get("prompts"));
        prompts.insert(prompts.end(), more.begin(), more.end());
    }
    CXR_CHECK(!prompts.empty(), "cxr generate: give --prompt TEXT (repeatable) or --prompts FILE");
    const int64_t per_prompt = args.get_int("images-per-prompt"), batch = args.get_int("batch");
    const int64_t steps = args.get_int("steps"), seed = args.get_int("seed");
    CXR_CHECK(per_prompt >= 1, "cxr generate: --images-per-prompt must be >= 1");
    CXR_CHECK(batch >= 1, "cxr generate: --batch must be >= 1");
    CXR_CHECK(steps >= 1, "cxr generate: --steps must be >= 1");
    CXR_CHECK(seed >= 0, "cxr generate: --seed must be >= 0");
    const double guidance_rescale = args.get_double("guidance-rescale");
    CXR_CHECK(guidance_rescale >= 0 && guidance_rescale <= 1, "cxr generate: --guidance-rescale must be in [0, 1]");

    diffusion::PipelineLoadOptions lo;
    lo.variant = args.get("variant");
    lo.device = tensor::parse_device(args.get("device"));
    lo.scheduler = parse_scheduler_option(args.get("scheduler"));
    diffusion::StableDiffusionPipeline pipe = diffusion::StableDiffusionPipeline::load(model_dir, lo);
    const double eta = args.get_double("eta");
    CXR_CHECK(eta == 0.0 || pipe.scheduler_config.kind == diffusion::SchedulerKind::ddim,
              "cxr generate: --eta applies to the DDIM scheduler only (use --scheduler ddim)");

    const fs::path out(out_dir), images_dir = out / "images";
    const int64_t total = (int64_t)prompts.size() * per_prompt;
    const bool grayscale = args.flag("grayscale"), quiet = args.flag("quiet");
    const int64_t f = pipe.vae_scale_factor();
    const int64_t height = args.get_int("height") > 0 ? args.get_int("height") : pipe.unet->config.sample_size[0] * f;
    const int64_t width = args.get_int("width") > 0 ? args.get_int("width")
                          : args.get_int("height") > 0 ? height
                                                       : pipe.unet->config.sample_size[1] * f;
    // Everything that decides the images (not batch, device or quiet): a resumed run must match it exactly.
    const nlohmann::json options = {{"model", fs::absolute(model_dir).lexically_normal().string()},
                                    {"variant", lo.variant},
                                    {"prompts", prompts},
                                    {"images_per_prompt", per_prompt},
                                    {"steps", steps},
                                    {"guidance", args.get_double("guidance")},
                                    {"guidance_rescale", guidance_rescale},
                                    {"scheduler", pipe.scheduler_config.to_json()},
                                    {"eta", eta},
                                    {"seed", seed},
                                    {"negative", args.get("negative")},
                                    {"height", height},
                                    {"width", width},
                                    {"grayscale", grayscale}};
    const fs::path record_path = out / "generate.json";
    if (fs::exists(record_path)) {
        const nlohmann::json old = read_json_file(record_path.string(), "cxr generate", "run record");
        const nlohmann::json old_options = old.value("options", nlohmann::json::object());
        CXR_CHECK(old_options == options, "cxr generate: ", out_dir, " holds a run with other settings (",
                  config_differences(old_options, options), "); use another --out, or the same settings to resume it");
    }
    fs::create_directories(images_dir);
    // The record is written before the first image, so a killed run's images are never without their settings.
    write_json_atomically(record_path, {{"status", "running"}, {"options", options}, {"run", run_record()}});
    std::cout << "cxr generate: " << prompts.size() << " prompt(s) × " << per_prompt << " = " << total << " images, "
              << steps << " steps, guidance " << args.get_double("guidance") << ", " << diffusion::to_string(pipe.scheduler_config.kind)
              << std::endl;

    auto image_path = [&](int64_t k) {
        char name[32];
        std::snprintf(name, sizeof name, "%06lld.png", (long long)k);
        return images_dir / name;
    };
    std::vector<int64_t> todo;
    for (int64_t k = 0; k < total; ++k)
        if (!fs::exists(image_path(k))) todo.push_back(k);
    if ((int64_t)todo.size() < total)
        std::cout << "resuming: " << total - (int64_t)todo.size() << " image(s) already in " << images_dir.string()
                  << std::endl;

    // Model calls per batch = the scheduler's timestep count (PNDM runs n + 1 of them for n steps).
    int64_t calls_per_batch = 0;
    {
        auto sched = pipe.make_scheduler();
        sched->set_timesteps(steps);
        calls_per_batch = (int64_t)sched->timesteps().size();
    }
    const int64_t batches = ((int64_t)todo.size() + batch - 1) / batch;
    std::unique_ptr<Progress> bar;
    if (!quiet) bar = std::make_unique<Progress>("generate", batches * calls_per_batch);
    int64_t done_steps = 0;
    for (size_t start = 0; start < todo.size(); start += (size_t)batch) {
        const size_t end = std::min(todo.size(), start + (size_t)batch);
        diffusion::GenerateOptions g;
        for (size_t i = start; i < end; ++i) {
            g.prompts.push_back(prompts[(size_t)(todo[i] / per_prompt)]);
            g.seeds.push_back((uint64_t)seed + (uint64_t)todo[i]);
        }
        if (!args.get("negative").empty()) g.negative_prompts.assign(g.prompts.size(), args.get("negative"));
        g.height = height;
        g.width = width;
        g.num_inference_steps = steps;
        g.guidance_scale = args.get_double("guidance");
        g.guidance_rescale = guidance_rescale;
        g.eta = eta;
        g.on_step = [&](int64_t, int64_t) {
            ++done_steps;
            if (bar) bar->update(done_steps);
        };
        const diffusion::GenerateResult r = pipe.generate(g);  // images [b, 3, H, W] in [0, 1]
        for (size_t i = start; i < end; ++i) {
            tensor::Tensor img = tensor::select(r.images, 0, (int64_t)(i - start));  // [3, H, W]
            if (grayscale) img = tensor::mean(img, {0}, true);                     // [1, H, W]
            write_png_atomically(image_path(todo[i]), img);
        }
    }
    if (bar) bar->finish();

    // The manifest and the record cover every image of the run, including those of an earlier, resumed run.
    std::vector<data::Record> records;
    nlohmann::json images = nlohmann::json::array();
    for (int64_t k = 0; k < total; ++k) {
        data::Record rec;
        rec.image_path = image_path(k).string();
        rec.report = prompts[(size_t)(k / per_prompt)];
        if (const auto d = data::parse_prompt_prefix(rec.report)) {  // "<AGE> year old <RACE> <SEX>. ..."
            rec.age = d->age;
            rec.race = d->race;
            rec.sex = d->sex;
        }
        rec.dataset = "synthetic";
        rec.site = "cxr generate";
        rec.patient_id = "gen" + std::to_string(k);
        records.push_back(rec);
        images.push_back({{"path", fs::relative(image_path(k), out).string()}, {"prompt", rec.report},
                          {"seed", seed + k}});
    }
    data::write_manifest((out / "manifest.csv").string(), records);
    nlohmann::json j = {{"status", "complete"},
                        {"options", options},
                        {"weight_files", pipe.weight_files},
                        {"device", args.get("device")},
                        {"images", images},
                        {"run", run_record()}};
    write_json_atomically(record_path, j);
    std::cout << "wrote " << total << " images to " << images_dir.string() << " and " << (out / "manifest.csv").string()
              << "\n";
    return 0;
}

}  // namespace cxr::apps
