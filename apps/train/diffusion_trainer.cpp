// The diffusion trainer (apps/train/diffusion_trainer.h has the procedure and the files it writes).
#include "apps/train/diffusion_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "apps/config_json.h"
#include "apps/progress.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "data/prompts.h"
#include "diffusion/pipeline.h"
#include "diffusion/train.h"
#include "nn/checkpoint.h"
#include "nn/clip.h"
#include "nn/ema.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/autograd.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::apps {

namespace fs = std::filesystem;
using nlohmann::json;
using tensor::Tensor;

// ---------------------------------------------------------------- config

namespace {

const std::vector<std::string>& config_keys() {
    static const std::vector<std::string> k = {
        "model",          "variant",      "image_size",   "prompt",          "latents",        "batch_size",     "accumulation",
        "lr",             "schedule",     "warmup_steps",    "adam_beta1",     "adam_beta2",     "adam_eps",
        "weight_decay",   "max_grad_norm", "epochs",         "max_steps",      "p_uncond",       "train_text_encoder",
        "min_snr_gamma",  "noise_offset", "ema",             "ema_decay",      "ema_warmup",     "checkpoint_every",
        "sample_every",   "sample_prompts", "sample_steps",  "sample_guidance", "sample_seed",   "device",
        "seed",           "workers",      "cache"};
    return k;
}

const char* const kWhere = "diffusion config";

}  // namespace

DiffusionTrainConfig DiffusionTrainConfig::from_json(const json& j) {
    check_known_keys(j, kWhere, config_keys());
    DiffusionTrainConfig c;
    read_key(j, "model", c.model, kWhere);
    read_key(j, "variant", c.variant, kWhere);
    read_key(j, "image_size", c.image_size, kWhere);
    read_key(j, "prompt", c.prompt, kWhere);
    read_key(j, "latents", c.latents, kWhere);
    read_key(j, "batch_size", c.batch_size, kWhere);
    read_key(j, "accumulation", c.accumulation, kWhere);
    read_key(j, "lr", c.lr, kWhere);
    read_key(j, "schedule", c.schedule, kWhere);
    read_key(j, "warmup_steps", c.warmup_steps, kWhere);
    read_key(j, "adam_beta1", c.adam_beta1, kWhere);
    read_key(j, "adam_beta2", c.adam_beta2, kWhere);
    read_key(j, "adam_eps", c.adam_eps, kWhere);
    read_key(j, "weight_decay", c.weight_decay, kWhere);
    read_key(j, "max_grad_norm", c.max_grad_norm, kWhere);
    read_key(j, "epochs", c.epochs, kWhere);
    read_key(j, "max_steps", c.max_steps, kWhere);
    read_key(j, "p_uncond", c.p_uncond, kWhere);
    read_key(j, "train_text_encoder", c.train_text_encoder, kWhere);
    read_key(j, "min_snr_gamma", c.min_snr_gamma, kWhere);
    read_key(j, "noise_offset", c.noise_offset, kWhere);
    read_key(j, "ema", c.ema, kWhere);
    read_key(j, "ema_decay", c.ema_decay, kWhere);
    read_key(j, "ema_warmup", c.ema_warmup, kWhere);
    read_key(j, "checkpoint_every", c.checkpoint_every, kWhere);
    read_key(j, "sample_every", c.sample_every, kWhere);
    read_key(j, "sample_prompts", c.sample_prompts, kWhere);
    read_key(j, "sample_steps", c.sample_steps, kWhere);
    read_key(j, "sample_guidance", c.sample_guidance, kWhere);
    read_key(j, "sample_seed", c.sample_seed, kWhere);
    read_key(j, "device", c.device, kWhere);
    read_key(j, "seed", c.seed, kWhere);
    read_key(j, "workers", c.workers, kWhere);
    read_key(j, "cache", c.cache, kWhere);
    c.validate();
    return c;
}

json DiffusionTrainConfig::to_json() const {
    return {{"model", model},
            {"variant", variant},
            {"image_size", image_size},
            {"prompt", prompt},
            {"latents", latents},
            {"batch_size", batch_size},
            {"accumulation", accumulation},
            {"lr", lr},
            {"schedule", schedule},
            {"warmup_steps", warmup_steps},
            {"adam_beta1", adam_beta1},
            {"adam_beta2", adam_beta2},
            {"adam_eps", adam_eps},
            {"weight_decay", weight_decay},
            {"max_grad_norm", max_grad_norm},
            {"epochs", epochs},
            {"max_steps", max_steps},
            {"p_uncond", p_uncond},
            {"train_text_encoder", train_text_encoder},
            {"min_snr_gamma", min_snr_gamma},
            {"noise_offset", noise_offset},
            {"ema", ema},
            {"ema_decay", ema_decay},
            {"ema_warmup", ema_warmup},
            {"checkpoint_every", checkpoint_every},
            {"sample_every", sample_every},
            {"sample_prompts", sample_prompts},
            {"sample_steps", sample_steps},
            {"sample_guidance", sample_guidance},
            {"sample_seed", sample_seed},
            {"device", device},
            {"seed", seed},
            {"workers", workers},
            {"cache", cache}};
}

void DiffusionTrainConfig::validate() const {
    CXR_CHECK(!model.empty(), "diffusion config: \"model\" (a diffusers Stable Diffusion folder) is required");
    CXR_CHECK(image_size >= 0 && image_size <= 4096, "diffusion config: image_size must be in 0..4096 (0: the "
              "model's size), got ", image_size);
    CXR_CHECK(one_of(prompt, {"demographic", "report"}), "diffusion config: prompt must be \"demographic\" or "
              "\"report\", got \"", prompt, "\"");
    CXR_CHECK(one_of(latents, {"sample", "mode"}), "diffusion config: latents must be \"sample\" or \"mode\", got \"",
              latents, "\"");
    CXR_CHECK(batch_size >= 1, "diffusion config: batch_size must be >= 1, got ", batch_size);
    CXR_CHECK(accumulation >= 1, "diffusion config: accumulation must be >= 1, got ", accumulation);
    CXR_CHECK(lr > 0 && std::isfinite(lr), "diffusion config: lr must be positive, got ", lr);
    CXR_CHECK(one_of(schedule, {"constant", "cosine"}),
              "diffusion config: schedule must be \"constant\" or \"cosine\", got \"", schedule, "\"");
    CXR_CHECK(warmup_steps >= 0, "diffusion config: warmup_steps must be >= 0, got ", warmup_steps);
    CXR_CHECK(adam_beta1 >= 0 && adam_beta1 < 1 && adam_beta2 >= 0 && adam_beta2 < 1,
              "diffusion config: adam_beta1 and adam_beta2 must be in [0, 1)");
    CXR_CHECK(adam_eps > 0, "diffusion config: adam_eps must be > 0");
    CXR_CHECK(weight_decay >= 0, "diffusion config: weight_decay must be >= 0, got ", weight_decay);
    CXR_CHECK(max_grad_norm >= 0, "diffusion config: max_grad_norm must be >= 0 (0: off), got ", max_grad_norm);
    CXR_CHECK(epochs >= 1, "diffusion config: epochs must be >= 1, got ", epochs);
    CXR_CHECK(max_steps >= 0, "diffusion config: max_steps must be >= 0 (0: use epochs), got ", max_steps);
    CXR_CHECK(p_uncond >= 0 && p_uncond <= 1, "diffusion config: p_uncond must be in [0, 1], got ", p_uncond);
    CXR_CHECK(min_snr_gamma >= 0 && std::isfinite(min_snr_gamma),
              "diffusion config: min_snr_gamma must be >= 0 (0: off), got ", min_snr_gamma);
    CXR_CHECK(noise_offset >= 0 && std::isfinite(noise_offset), "diffusion config: noise_offset must be >= 0, got ",
              noise_offset);
    CXR_CHECK(ema_decay >= 0 && ema_decay <= 1, "diffusion config: ema_decay must be in [0, 1], got ", ema_decay);
    CXR_CHECK(one_of(ema_warmup, {"diffusers", "power", "none"}), "diffusion config: ema_warmup must be diffusers, "
              "power or none, got \"", ema_warmup, "\"");
    CXR_CHECK(checkpoint_every >= 0, "diffusion config: checkpoint_every must be >= 0 (0: only at the end)");
    CXR_CHECK(sample_every >= 0, "diffusion config: sample_every must be >= 0 (0: no samples)");
    CXR_CHECK(sample_every == 0 || !sample_prompts.empty(),
              "diffusion config: sample_every > 0 needs at least one of sample_prompts");
    CXR_CHECK(sample_steps >= 1, "diffusion config: sample_steps must be >= 1, got ", sample_steps);
    CXR_CHECK(sample_guidance >= 0, "diffusion config: sample_guidance must be >= 0");
    CXR_CHECK(workers >= 0, "diffusion config: workers must be >= 0");
    tensor::parse_device(device);
}

// ---------------------------------------------------------------- pieces

std::string training_prompt(const data::Record& r, const std::string& mode,
                            const std::function<int(const std::string&)>& count) {
    const bool known = r.has_age() && r.sex != data::Sex::unknown && r.race != data::Race::other_unknown;
    if (mode == "demographic" && known) {
        const int age = (int)std::lround(r.age);
        return data::fit_prompt(age, r.race, r.sex, r.report, count).prompt;
    }
    return r.report;
}

namespace {

// SplitMix64's finaliser over (seed, m): the seed of micro-batch m's generator.
uint64_t mix64(uint64_t seed, uint64_t m) {
    uint64_t z = seed ^ (0x9e3779b97f4a7c15ULL * (m + 1));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// The EMA shadow as a module tree with the UNet's dotted keys (buffers sharing the shadow's storage), so that it is
// saved and restored by nn/checkpoint.h beside the weights it averages.
class EmaShadowModule : public nn::Module {
public:
    explicit EmaShadowModule(const nn::Ema& ema) : nn::Module("EmaShadow") {
        for (const auto& [key, tensor] : ema.shadow()) {
            nn::Module* at = this;
            std::string rest = key;
            for (size_t dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
                const std::string name = rest.substr(0, dot);
                std::shared_ptr<nn::Module> c = at->child(name);
                if (!c) c = at->register_module(name, std::make_shared<nn::Module>("EmaShadow"));
                at = c.get();
                rest = rest.substr(dot + 1);
            }
            slots_.push_back(tensor);  // the same storage as the shadow
            at->register_buffer(rest, slots_.back());
        }
    }

private:
    std::deque<Tensor> slots_;  // stable addresses for the registered slots
};

// What a checkpoint holds: "unet", "text_encoder" (when trained), "ema" (when on).
class TrainablesModule : public nn::Module {
public:
    TrainablesModule(std::shared_ptr<diffusion::UNet2DConditionModel> unet,
                     std::shared_ptr<diffusion::ClipTextModel> text_encoder, const nn::Ema* ema)
        : nn::Module("DiffusionTrainables") {
        register_module("unet", std::move(unet));
        if (text_encoder) register_module("text_encoder", std::move(text_encoder));
        if (ema) register_module("ema", std::make_shared<EmaShadowModule>(*ema));
    }
};

nn::LrSchedule make_schedule(const DiffusionTrainConfig& c, int64_t total) {
    const int64_t w = c.warmup_steps;
    if (c.schedule == "cosine") return w > 0 ? nn::LrSchedule::warmup_cosine(w, total) : nn::LrSchedule::cosine(total);
    return w > 0 ? nn::LrSchedule::linear_warmup(w, 0.0) : nn::LrSchedule::constant();  // constant_with_warmup
}

nn::EmaOptions ema_options(const DiffusionTrainConfig& c) {
    nn::EmaOptions o;
    o.decay = c.ema_decay;
    o.warmup = c.ema_warmup == "power"   ? nn::EmaOptions::Warmup::power
               : c.ema_warmup == "none" ? nn::EmaOptions::Warmup::none
                                        : nn::EmaOptions::Warmup::diffusers;
    return o;
}

// The settings a resumed run must share with the checkpoint's: the config without the keys that do not change
// results (loader workers, the image cache).
json resume_relevant(json config) {
    config.erase("workers");
    config.erase("cache");
    return config;
}

// What the run trains on: the image count and an FNV-1a hash of every image path and its report, so a resume on
// another data set (a changed manifest, another source) is refused instead of silently continuing on other images.
json data_fingerprint(const std::vector<data::Record>& records) {
    uint64_t h = 1469598103934665603ULL;
    auto mix = [&](const std::string& s) {
        for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
        h = (h ^ 0xffu) * 1099511628211ULL;  // a separator, so "ab"+"c" differs from "a"+"bc"
    };
    for (const auto& r : records) {
        mix(r.image_path);
        mix(r.report);
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    return {{"images", records.size()}, {"fingerprint", hex}};
}

// Token ids [B, 77] i64 of the prompts (the pipeline's tokenizer, padded as the pipeline pads).
Tensor token_ids(const diffusion::StableDiffusionPipeline& pipe, const std::vector<std::string>& prompts) {
    const int context = (int)pipe.text_encoder->config().max_position_embeddings;
    std::vector<int64_t> ids;
    for (const auto& p : prompts) {
        const std::vector<int> one = pipe.tokenizer->encode_for_model(p, context);
        ids.insert(ids.end(), one.begin(), one.end());
    }
    Tensor t = tensor::from_vector(ids, {(int64_t)prompts.size(), (int64_t)context});  // [B, 77]
    return pipe.device == tensor::Device::cpu() ? t : t.to(pipe.device);
}

void check_model_folder(const std::string& model) {
    CXR_CHECK(fs::is_directory(model), "train-diffusion: model folder '", model,
              "' does not exist (give a diffusers Stable Diffusion folder, e.g. tests/fixtures/sd_tiny)");
    CXR_CHECK(fs::exists(fs::path(model) / "model_index.json"), "train-diffusion: '", model,
              "' has no model_index.json: not a diffusers pipeline folder");
}

}  // namespace

// ---------------------------------------------------------------- training

DiffusionTrainResult train_diffusion(const DiffusionTrainConfig& config, const std::vector<data::Record>& records,
                                     const std::string& out_dir, const DiffusionTrainHooks& hooks) {
    config.validate();
    CXR_CHECK(!records.empty(), "train-diffusion: no training images (the data source is empty)");
    check_model_folder(config.model);
    const tensor::Device dev = tensor::parse_device(config.device);
    diffusion::PipelineLoadOptions lo;
    lo.device = dev;
    lo.variant = config.variant;
    diffusion::StableDiffusionPipeline pipe = diffusion::StableDiffusionPipeline::load(config.model, lo);
    const int64_t f = pipe.vae_scale_factor();
    const int64_t S = config.image_size > 0 ? config.image_size : pipe.unet->config.sample_size[0] * f;
    CXR_CHECK(S % f == 0, "train-diffusion: image_size ", S, " is not a multiple of the VAE factor ", f, " of '",
              config.model, "'");
    const fs::path out(out_dir);
    fs::create_directories(out);
    const json config_json = config.to_json();

    // Models: the VAE frozen in eval mode; the UNet trained; the text encoder trained only when asked.
    pipe.vae->freeze();
    pipe.vae->eval();
    pipe.unet->unfreeze();
    pipe.unet->train();
    if (config.train_text_encoder) {
        pipe.text_encoder->unfreeze();
        pipe.text_encoder->train();
    } else {
        pipe.text_encoder->freeze();
        pipe.text_encoder->eval();
    }
    std::vector<Tensor> params = pipe.unet->parameters();
    if (config.train_text_encoder)
        for (const Tensor& p : pipe.text_encoder->parameters()) params.push_back(p);
    nn::AdamOptions ao;
    ao.lr = config.lr;
    ao.beta1 = config.adam_beta1;
    ao.beta2 = config.adam_beta2;
    ao.eps = config.adam_eps;
    ao.weight_decay = config.weight_decay;
    nn::Adam optimizer(params, ao, /*decoupled_weight_decay=*/true);  // AdamW
    std::unique_ptr<nn::Ema> ema;
    if (config.ema) ema = std::make_unique<nn::Ema>(pipe.unet->named_parameters(), ema_options(config));
    TrainablesModule trainables(pipe.unet, config.train_text_encoder ? pipe.text_encoder : nullptr, ema.get());

    // Prompts of every record (fitted once).
    const auto count = pipe.tokenizer->token_counter();
    std::vector<std::string> prompts;
    prompts.reserve(records.size());
    for (const auto& r : records) prompts.push_back(training_prompt(r, config.prompt, count));

    data::LoaderOptions lopt;
    lopt.batch_size = config.batch_size;
    lopt.image_size = (int)S;
    lopt.channels = 1;
    lopt.shuffle = true;
    lopt.drop_last = (int64_t)records.size() >= config.batch_size;
    lopt.seed = config.seed;
    lopt.workers = config.workers;
    lopt.cache_path = config.cache;
    lopt.pin_memory = dev.is_cuda();
    data::Loader loader(records, lopt);
    const int64_t M = loader.batches_per_epoch();
    const int64_t A = config.accumulation;
    const int64_t total = config.max_steps > 0 ? config.max_steps : (config.epochs * M + A - 1) / A;
    CXR_CHECK(config.warmup_steps < total || config.schedule == "constant", "train-diffusion: warmup_steps (",
              config.warmup_steps, ") must be below the number of steps (", total, ") for the cosine schedule");
    const nn::LrSchedule schedule = make_schedule(config, total);
    std::unique_ptr<diffusion::Scheduler> noise_schedule = pipe.make_scheduler();
    diffusion::DiffusionLossOptions loss_opt;
    loss_opt.min_snr_gamma = config.min_snr_gamma;

    DiffusionTrainResult result;
    const std::string last = (out / "last").string();
    result.checkpoint = last;
    int64_t start = 0;
    if (nn::checkpoint_exists(last)) {
        const nn::LoadedCheckpoint ck = nn::read_checkpoint(last);
        const json saved = resume_relevant(ck.meta.value("config", json::object()));
        CXR_CHECK(saved == resume_relevant(config_json), "train-diffusion: cannot resume in '", out_dir,
                  "': its checkpoint was trained with another config: ",
                  config_differences(saved, resume_relevant(config_json)),
                  ". Use another output folder or the same config.");
        if (ck.meta.contains("data"))
            CXR_CHECK(ck.meta["data"] == data_fingerprint(records), "train-diffusion: cannot resume in '", out_dir,
                      "': its checkpoint was trained on other images (", ck.meta["data"].dump(), ", now ",
                      data_fingerprint(records).dump(), "). Use another output folder or the same data.");
        nn::load_checkpoint(ck, last, trainables, &optimizer);
        if (ema) {
            auto state = ema->state_dict();  // the shadow as just loaded
            state["ema.num_updates"] =
                tensor::scalar_tensor((double)ck.meta.at("ema_updates").get<int64_t>(), tensor::DType::i64);
            ema->load_state_dict(state);
        }
        start = ck.meta.at("step").get<int64_t>();
        tensor::default_generator().manual_seed(ck.meta.at("rng").at("seed").get<uint64_t>());
        tensor::default_generator().set_offset(ck.meta.at("rng").at("offset").get<uint64_t>());
        // a killed run may have logged steps after its last checkpoint
        keep_jsonl_lines(out / "log.jsonl", [&](const json& j) { return j.value("step", int64_t{-1}) < start; });
        result.resumed = true;
        if (!hooks.quiet) std::cerr << "resuming " << out_dir << " at step " << start << " of " << total << "\n";
    } else {
        tensor::manual_seed(config.seed);
        std::ofstream(out / "log.jsonl", std::ios::trunc);
    }
    write_json_atomically(out / "config.json", config_json);
    write_json_atomically(out / "run.json", run_record());

    auto save = [&](int64_t steps_done) {
        const tensor::Generator& g = tensor::default_generator();
        const json meta = {{"config", config_json},
                           {"data", data_fingerprint(records)},
                           {"step", steps_done},
                           {"ema_updates", ema ? ema->num_updates() : int64_t{0}},
                           {"rng", {{"seed", g.seed()}, {"offset", g.offset()}}},
                           {"run", run_record()}};
        nn::save_checkpoint(last, trainables, &optimizer, meta);
    };
    // Runs fn with the EMA weights in the UNet (when EMA is on) and the models in eval mode.
    auto with_inference_weights = [&](const std::function<void()>& fn) {
        pipe.unet->eval();
        pipe.text_encoder->eval();
        if (ema) {
            ema->store();
            ema->copy_to();
        }
        fn();
        if (ema) ema->restore();
        pipe.unet->train();
        if (config.train_text_encoder) pipe.text_encoder->train();
    };
    auto write_samples = [&](int64_t steps_done) {
        with_inference_weights([&] {
            diffusion::GenerateOptions go;
            go.prompts = config.sample_prompts;
            go.height = go.width = S;
            go.num_inference_steps = config.sample_steps;
            go.guidance_scale = config.sample_guidance;
            go.seed_base = config.sample_seed;
            const diffusion::GenerateResult g = pipe.generate(go);
            const fs::path dir = out / "samples" / ("step_" + std::to_string(steps_done));
            fs::create_directories(dir);
            for (int64_t i = 0; i < g.images.size(0); ++i) {
                const fs::path tmp = dir / (std::to_string(i) + ".png.tmp");
                data::write_png(tmp.string(), tensor::select(g.images, 0, i));
                fs::rename(tmp, dir / (std::to_string(i) + ".png"));
            }
        });
    };

    std::ofstream log(out / "log.jsonl", std::ios::app);
    std::unique_ptr<Progress> bar;
    if (!hooks.quiet && start < total) bar = std::make_unique<Progress>("train-diffusion", total - start);
    int64_t loaded_epoch = -1, next_batch = 0;  // the loader's position
    data::Batch batch;
    double recent = 0;  // running mean of the last losses for the bar
    bool stopped = false;
    for (int64_t k = start; k < total; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        optimizer.zero_grad();
        double step_loss = 0;
        int64_t epoch = 0;
        for (int64_t a = 0; a < A; ++a) {
            const int64_t m = k * A + a;  // micro-batch number
            epoch = m / M;
            const int64_t b = m % M;
            if (epoch != loaded_epoch || b != next_batch) {  // (re)position the loader: a new epoch or a resume
                loader.start_epoch(epoch, b);  // a resume starts at batch b without decoding the ones before it
                loaded_epoch = epoch;
            }
            CXR_CHECK(loader.next(batch), "train-diffusion: the loader ended before batch ", b, " of epoch ", epoch);
            next_batch = b + 1;

            tensor::Generator gen(mix64(config.seed, (uint64_t)m));
            std::vector<std::string> p;
            for (int64_t i : batch.indices) p.push_back(prompts[(size_t)i]);
            p = diffusion::prompt_dropout(p, config.p_uncond, gen);
            const Tensor latents = diffusion::images_to_training_latents(
                *pipe.vae, batch.images.to(dev), config.latents == "sample", &gen);  // [B, 4, S/f, S/f]
            const diffusion::TrainingNoise draw = diffusion::draw_training_noise(
                latents, noise_schedule->num_train_timesteps(), gen, config.noise_offset);
            Tensor context;  // [B, 77, D]
            if (config.train_text_encoder) {
                context = pipe.text_encoder->encode(token_ids(pipe, p));
            } else {
                tensor::NoGradGuard ng;
                context = pipe.text_encoder->encode(token_ids(pipe, p));
            }
            const diffusion::DiffusionLossResult r = diffusion::diffusion_loss(
                *pipe.unet, *noise_schedule, latents, context, draw.timesteps, draw.noise, loss_opt);
            tensor::div(r.loss, (double)A).backward();
            step_loss += r.loss.item() / (double)A;
        }
        double grad_norm = NAN;
        if (config.max_grad_norm > 0) grad_norm = nn::clip_grad_norm_(params, config.max_grad_norm);
        nn::apply_lr_schedule(optimizer, schedule, k);
        const double lr = optimizer.lr(0);
        optimizer.step();
        optimizer.zero_grad();
        if (ema) ema->update();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        log << json{{"step", k}, {"epoch", epoch}, {"loss", step_loss}, {"lr", lr},
                    {"grad_norm", std::isfinite(grad_norm) ? json(grad_norm) : json(nullptr)}, {"seconds", seconds}}
                   .dump()
            << "\n";
        log.flush();
        result.step_losses.push_back(step_loss);
        const int64_t done = k + 1;
        if (config.checkpoint_every > 0 && done % config.checkpoint_every == 0 && done < total) save(done);
        if (config.sample_every > 0 && done % config.sample_every == 0 && done < total) write_samples(done);
        const size_t n = result.step_losses.size(), w = std::min<size_t>(n, 20);
        recent = 0;
        for (size_t i = n - w; i < n; ++i) recent += result.step_losses[i] / (double)w;
        if (bar) {
            std::ostringstream note;
            note.precision(4);
            note << "loss " << recent << " lr " << lr;
            bar->update(done - start, note.str());
        }
        if (hooks.after_step && !hooks.after_step(k)) {
            stopped = true;
            break;
        }
    }
    if (bar) bar->finish();
    result.steps_run = stopped ? start + (int64_t)result.step_losses.size() : total;
    if (stopped) return result;

    if (start < total || !fs::exists(out / "pipeline" / "model_index.json")) {
        save(total);
        if (config.sample_every > 0) write_samples(total);
        // The final pipeline folder, with the EMA weights when EMA is on: written beside, then renamed over.
        const fs::path tmp = out / "pipeline.tmp", final_dir = out / "pipeline";
        fs::remove_all(tmp);
        with_inference_weights([&] { pipe.save(tmp.string()); });
        fs::remove_all(final_dir);
        fs::rename(tmp, final_dir);
        double last_mean = 0;
        const size_t n = result.step_losses.size(), w = std::min<size_t>(n, 20);
        for (size_t i = n - w; i < n; ++i) last_mean += result.step_losses[i] / (double)std::max<size_t>(w, 1);
        write_json_atomically(out / "summary.json", {{"steps", total},
                                                     {"resumed", result.resumed},
                                                     {"last_losses_mean", n ? json(last_mean) : json(nullptr)},
                                                     {"pipeline", final_dir.string()},
                                                     {"checkpoint", last}});
    }
    result.pipeline_dir = (out / "pipeline").string();
    return result;
}

}  // namespace cxr::apps
