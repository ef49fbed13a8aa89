// Stable Diffusion at full size: seconds per component call and peak memory, on the CPU or a CUDA device.
//   text encoder   ClipTextModel(sd15 or sd21) on [2, 77] ids          (the prompt and the empty prompt, once per image)
//   unet           UNet2DConditionModel on [2, 4, S/8, S/8] latents     (one guided denoising step: uncond + cond)
//   vae decode     AutoencoderKL(sd) on [1, 4, S/8, S/8] -> [1, 3, S, S] (once per image)
// and the estimated seconds per image for N steps = text + N · unet + vae. The models are built under
// nn::init::SkipRandomInit (zero weights: the dense kernels do the same work whatever the values), or loaded from a
// diffusers folder with --model. Each call runs once to warm up and then --repeat times; the median is reported.
// Everything runs under no_grad, in f32.
//
// Usage: bench_diffusion [--size 256] [--repeat 2] [--steps 50] [--preset sd15|sd21] [--model DIR] [--device cpu|cuda]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "diffusion/clip_text_encoder.h"
#include "diffusion/pipeline.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"
#include "nn/init.h"
#include "tensor/autograd.h"
#include "tensor/backend.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/view.h"

namespace {

namespace T = cxr::tensor;
using namespace cxr::diffusion;

void sync(T::Device dev) {
    if (!dev.is_cpu()) T::backend_for(dev.type).synchronize(dev);
}

double median_seconds(const std::function<void()>& fn, int repeat, T::Device dev) {
    fn();  // warm-up (allocator, cuDNN algorithm choice)
    std::vector<double> s;
    for (int r = 0; r < repeat; ++r) {
        sync(dev);
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        sync(dev);
        s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(s.begin(), s.end());
    return s[s.size() / 2];
}

double peak_rss_gib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_maxrss / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
    int64_t size = 256, steps = 50;
    int repeat = 2;
    std::string preset = "sd15", model_dir, device = "cpu";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--size")) size = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--steps")) steps = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--preset")) preset = argv[i + 1];
        else if (!std::strcmp(argv[i], "--model")) model_dir = argv[i + 1];
        else if (!std::strcmp(argv[i], "--device")) device = argv[i + 1];
        else {
            std::fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (size % 8 != 0 || repeat < 1) {
        std::fprintf(stderr, "--size must be a multiple of 8 and --repeat >= 1\n");
        return 2;
    }
    const T::Device dev = T::parse_device(device);
    T::NoGradGuard ng;

    std::shared_ptr<ClipTextModel> text;
    std::shared_ptr<UNet2DConditionModel> unet;
    std::shared_ptr<AutoencoderKL> vae;
    if (!model_dir.empty()) {
        PipelineLoadOptions lo;
        lo.device = dev;
        StableDiffusionPipeline p = StableDiffusionPipeline::load(model_dir, lo);
        text = p.text_encoder;
        unet = p.unet;
        vae = p.vae;
        preset = model_dir;
    } else {
        cxr::nn::init::SkipRandomInit skip;
        const bool sd21 = preset == "sd21";
        text = std::make_shared<ClipTextModel>(sd21 ? ClipTextConfig::sd21() : ClipTextConfig::sd15());
        unet = std::make_shared<UNet2DConditionModel>(sd21 ? UNet2DConditionConfig::sd21() : UNet2DConditionConfig::sd15());
        vae = std::make_shared<AutoencoderKL>(AutoencoderKLConfig::sd());
        for (cxr::nn::Module* m : {(cxr::nn::Module*)text.get(), (cxr::nn::Module*)unet.get(), (cxr::nn::Module*)vae.get()}) {
            m->eval();
            if (dev != T::Device::cpu()) m->to(dev);
        }
    }
    const int64_t h = size / 8;
    const int64_t D = text->config().hidden_size;
    std::printf("bench_diffusion: %s, %lld×%lld images (latents %lld×%lld), %s, %d repeats\n", preset.c_str(),
                (long long)size, (long long)size, (long long)h, (long long)h, dev.str().c_str(), repeat);

    T::Tensor ids = T::zeros({2, 77}, T::Options(T::DType::i64, dev));
    T::Tensor ctx = T::zeros({2, 77, D}, T::Options(T::DType::f32, dev));
    T::Tensor lat2 = T::zeros({2, 4, h, h}, T::Options(T::DType::f32, dev));
    T::Tensor lat1 = T::zeros({1, 4, h, h}, T::Options(T::DType::f32, dev));
    const double t_text = median_seconds([&] { text->encode(ids); }, repeat, dev);
    const double t_unet = median_seconds([&] { unet->forward(lat2, 500.0, ctx); }, repeat, dev);
    const double t_vae = median_seconds([&] { vae->decode(lat1); }, repeat, dev);
    const double per_image = t_text + (double)steps * t_unet + t_vae;
    std::printf("| component | shape | seconds |\n|---|---|---|\n");
    std::printf("| text encoder | [2, 77] | %.3f |\n", t_text);
    std::printf("| unet (one guided step) | [2, 4, %lld, %lld] | %.3f |\n", (long long)h, (long long)h, t_unet);
    std::printf("| vae decode | [1, 4, %lld, %lld] -> [1, 3, %lld, %lld] | %.3f |\n", (long long)h, (long long)h,
                (long long)size, (long long)size, t_vae);
    std::printf("| one image, %lld steps | | %.1f |\n", (long long)steps, per_image);
    std::printf("peak resident memory: %.2f GiB (host)\n", peak_rss_gib());
    return 0;
}
