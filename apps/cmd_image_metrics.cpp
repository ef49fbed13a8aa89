// `cxr image-metrics`: image quality of a generated set against a real one — FID with Inception-v3 (user-supplied
// pytorch-fid weights) or a cxr classifier's penultimate features, and MS-SSIM diversity (mean pairwise within the
// generated set, within the real set for reference, and intra-prompt when the generated set's manifest has
// prompts). Rules: apps/eval/image_metrics.h; the command and its JSON: metrics/README.md "Image metrics".
// Also the single-purpose commands of issue 6's CLI over the same library: `cxr fid`, `cxr msssim` (paired) and
// `cxr diversity` (intra-prompt).
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/eval/image_metrics.h"
#include "apps/progress.h"
#include "tensor/error.h"

namespace cxr::apps {

namespace {

// FID's keys of both commands' JSON (`b_name`: what the second set is called, "generated" or "fake"), and the line
// printed with it.
nlohmann::json fid_json(const FidResult& r, const std::string& b_name) {
    std::cout << "FID (" << r.extractor << ", " << r.feature_dim << "-d, " << r.n_a << " real vs " << r.n_b << " "
              << b_name << "): " << r.fid << "\n";
    return {{"fid", r.fid},
            {"extractor", r.extractor},
            {"feature_dim", r.feature_dim},
            {"fid_terms",
             {{"mean_term", r.terms.mean_term},
              {"trace_real", r.terms.trace_a},
              {"trace_" + b_name, r.terms.trace_b},
              {"trace_sqrt_product", r.terms.trace_sqrt_product},
              {"regularised", r.terms.regularised}}}};
}

}  // namespace

int cmd_image_metrics(int argc, char** argv) {
    Args args("image-metrics",
              "Image quality of a generated set against a real one: FID (Inception-v3 with pytorch-fid's weights,\n"
              "or a cxr classifier's penultimate features) and MS-SSIM diversity. SPEC is a folder of PNG/JPEG\n"
              "images (sorted by name), a manifest .csv, or KIND:ROOT[:SPLIT] (e.g. manifest:/gen/manifest.csv,\n"
              "nih:/data/nih1000:test). Formats and rules: metrics/README.md (Image metrics).",
              {{"real", "SPEC", "the real image set (required with --features)", ""},
               {"generated", "SPEC", "the generated image set (required)", ""},
               {"features", "inception:W|classifier:STEM",
                "feature extractor for FID (pytorch-fid Inception weights, or a checkpoint stem)", ""},
               {"ms-ssim", "", "compute MS-SSIM diversity (generated, real, and intra-prompt when prompts exist)", ""},
               {"ms-ssim-size", "S", "common image side for MS-SSIM (>= 161 for 5 scales; smaller: fewer scales)",
                "256"},
               {"max-images", "N", "use the first N images of each set (0: all)", "0"},
               {"batch-size", "B", "images per feature batch", "16"},
               {"device", "DEV", "cpu or cuda[:n] for the feature extractor and MS-SSIM", "cpu"},
               {"workers", "N", "image decoding threads", "2"},
               {"quiet", "", "no progress bars", ""},
               {"out", "metrics.json", "where to write the metrics JSON (default: print it only)", ""}});
    if (!args.parse(argc, argv)) return 0;
    const std::string real_spec = args.get("real"), gen_spec = args.get("generated"), feat = args.get("features");
    const bool want_ms_ssim = args.flag("ms-ssim"), quiet = args.flag("quiet");
    CXR_CHECK(!gen_spec.empty(), "cxr image-metrics: --generated is required (see --help)");
    CXR_CHECK(!feat.empty() || want_ms_ssim,
              "cxr image-metrics: nothing to compute: give --features for FID and/or --ms-ssim (see --help)");
    CXR_CHECK(feat.empty() || !real_spec.empty(), "cxr image-metrics: FID (--features) needs --real");
    const int64_t max_images = args.get_int("max-images"), batch = args.get_int("batch-size");
    const int64_t workers = args.get_int("workers"), size = args.get_int("ms-ssim-size");
    CXR_CHECK(max_images >= 0, "cxr image-metrics: --max-images must be >= 0");
    CXR_CHECK(batch >= 1, "cxr image-metrics: --batch-size must be >= 1");
    CXR_CHECK(workers >= 0, "cxr image-metrics: --workers must be >= 0");
    CXR_CHECK(size >= 11 && size <= 4096, "cxr image-metrics: --ms-ssim-size must be in 11..4096, got ", size);

    const auto t0 = std::chrono::steady_clock::now();
    const ImageSet generated = parse_image_set(gen_spec, max_images);
    std::optional<ImageSet> real;
    if (!real_spec.empty()) real = parse_image_set(real_spec, max_images);

    nlohmann::json j;
    j["generated"] = {{"spec", generated.spec}, {"n", generated.size()}};
    j["n"] = {{"generated", generated.size()}};
    if (real) {
        j["real"] = {{"spec", real->spec}, {"n", real->size()}};
        j["n"]["real"] = real->size();
    }

    if (!feat.empty()) {
        ExtractorOptions eo;
        eo.device = args.get("device");
        eo.workers = static_cast<int>(workers);
        auto extractor = make_feature_extractor(feat, eo);
        const FidResult r = fid(*real, generated, *extractor, batch, quiet);
        j.update(fid_json(r, "generated"));
    }

    if (want_ms_ssim) {
        MsSsimOptions mo;
        mo.size = static_cast<int>(size);
        mo.device = args.get("device");
        const std::vector<double> weights = ms_ssim_scale_weights(mo.size);
        nlohmann::json m = {{"size", mo.size}, {"scales", weights.size()}, {"scale_weights", weights}};
        if (weights.size() < 5)
            m["note"] = "fewer than 5 scales (common size below 161 px): first scale weights renormalised to sum 1; "
                        "not comparable with standard 5-scale MS-SSIM";
        const DiversityReport g = set_diversity(generated, mo);
        m["generated"] = g.to_json();
        std::cout << "MS-SSIM, mean pairwise within generated (" << g.n << " images, " << g.pairs
                  << " pairs): " << g.mean_pairwise_ms_ssim << "\n";
        if (real) {
            const DiversityReport rr = set_diversity(*real, mo);
            m["real"] = rr.to_json();
            std::cout << "MS-SSIM, mean pairwise within real (" << rr.n << " images): " << rr.mean_pairwise_ms_ssim
                      << "\n";
        }
        // Intra-prompt diversity when the generated set carries prompts with >= 2 images each.
        bool has_group = false;
        {
            std::map<std::string, int> count;
            for (const auto& r : generated.records)
                if (!r.report.empty() && ++count[r.report] >= 2) has_group = true;
        }
        if (has_group) {
            const PromptDiversityReport p = prompt_diversity(generated, mo);
            m["intra_prompt"] = p.to_json();
            std::cout << "intra-prompt MS-SSIM (" << p.groups << " prompts): " << p.mean << "\n";
        } else {
            m["intra_prompt"] = nullptr;
            m["intra_prompt_note"] = "the generated set has no prompt (report) shared by 2 or more images";
        }
        j["ms_ssim"] = m;
    }

    nlohmann::json run = run_record();
    run["command"] = "image-metrics";
    run["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    run["options"] = {{"real", real_spec},       {"generated", gen_spec},     {"features", feat},
                      {"ms_ssim", want_ms_ssim}, {"ms_ssim_size", size},      {"max_images", max_images},
                      {"batch_size", batch},     {"device", args.get("device")}};
    j["run"] = run;
    if (!args.get("out").empty()) {
        write_json_atomically(args.get("out"), j);
        std::cout << "wrote " << args.get("out") << "\n";
    } else {
        std::cout << j.dump(2) << "\n";
    }
    return 0;
}

namespace {

// Prints the JSON or writes it (atomically) where --out says, with the run record.
void finish(const Args& args, const char* command, nlohmann::json j, std::chrono::steady_clock::time_point t0) {
    nlohmann::json run = run_record();
    run["command"] = command;
    run["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    j["run"] = run;
    if (!args.get("out").empty()) {
        write_json_atomically(args.get("out"), j);
        std::cout << "wrote " << args.get("out") << "\n";
    } else {
        std::cout << j.dump(2) << "\n";
    }
}

MsSsimOptions ms_ssim_options(const Args& args, const char* command) {
    MsSsimOptions mo;
    const int64_t size = args.get_int("size");
    CXR_CHECK(size >= 11 && size <= 4096, "cxr ", command, ": --size must be in 11..4096, got ", size);
    mo.size = static_cast<int>(size);
    mo.device = args.get("device");
    return mo;
}

const char* kSpecHelp = "SPEC: a folder of PNG/JPEG images (sorted by name), a manifest .csv, or KIND:ROOT[:SPLIT]";

}  // namespace

int cmd_fid(int argc, char** argv) {
    Args args("fid",
              std::string("Fréchet Inception Distance between a real and a generated image set (pool features of\n"
                          "Inception-v3 with pytorch-fid's weights, or a cxr classifier's penultimate features).\n") +
                      kSpecHelp + ".",
              {{"real", "SPEC", "the real image set (required)", ""},
               {"fake", "SPEC", "the generated image set (required)", ""},
               {"features", "inception:W|classifier:STEM", "the feature extractor (required)", ""},
               {"max-images", "N", "use the first N images of each set (0: all)", "0"},
               {"batch-size", "B", "images per feature batch", "16"},
               {"device", "DEV", "cpu or cuda[:n]", "cpu"},
               {"workers", "N", "image decoding threads", "2"},
               {"quiet", "", "no progress bars", ""},
               {"out", "FILE", "where to write the JSON (default: print it)", ""}});
    if (!args.parse(argc, argv)) return 0;
    CXR_CHECK(!args.get("real").empty() && !args.get("fake").empty() && !args.get("features").empty(),
              "cxr fid: --real, --fake and --features are required (see --help)");
    CXR_CHECK(args.get_int("batch-size") >= 1, "cxr fid: --batch-size must be >= 1");
    CXR_CHECK(args.get_int("max-images") >= 0 && args.get_int("workers") >= 0,
              "cxr fid: --max-images and --workers must be >= 0");
    const auto t0 = std::chrono::steady_clock::now();
    const ImageSet real = parse_image_set(args.get("real"), args.get_int("max-images"));
    const ImageSet fake = parse_image_set(args.get("fake"), args.get_int("max-images"));
    ExtractorOptions eo;
    eo.device = args.get("device");
    eo.workers = static_cast<int>(args.get_int("workers"));
    auto extractor = make_feature_extractor(args.get("features"), eo);
    const FidResult r = fid(real, fake, *extractor, args.get_int("batch-size"), args.flag("quiet"));
    nlohmann::json j = fid_json(r, "fake");
    j["n"] = {{"real", r.n_a}, {"fake", r.n_b}};
    j["real"] = real.spec;
    j["fake"] = fake.spec;
    finish(args, "fid", j, t0);
    return 0;
}

int cmd_msssim(int argc, char** argv) {
    Args args("msssim",
              std::string("MS-SSIM between the i-th images of two sets of equal size (e.g. VAE reconstructions\n"
                          "against their originals): 5 scales, 11x11 Gaussian window, sigma 1.5, the standard scale\n"
                          "weights, on gray images resized to a common side.\n") +
                      kSpecHelp + ".",
              {{"a", "SPEC", "the first set (required)", ""},
               {"b", "SPEC", "the second set, same size and order (required)", ""},
               {"size", "S", "common image side (>= 161 for 5 scales; smaller: fewer scales)", "256"},
               {"max-images", "N", "use the first N images of each set (0: all)", "0"},
               {"device", "DEV", "cpu or cuda[:n]", "cpu"},
               {"out", "FILE", "where to write the JSON (default: print it)", ""}});
    if (!args.parse(argc, argv)) return 0;
    CXR_CHECK(!args.get("a").empty() && !args.get("b").empty(), "cxr msssim: --a and --b are required (see --help)");
    CXR_CHECK(args.get_int("max-images") >= 0, "cxr msssim: --max-images must be >= 0");
    const auto t0 = std::chrono::steady_clock::now();
    const MsSsimOptions mo = ms_ssim_options(args, "msssim");
    const ImageSet a = parse_image_set(args.get("a"), args.get_int("max-images"));
    const ImageSet b = parse_image_set(args.get("b"), args.get_int("max-images"));
    const PairedMsSsimReport r = paired_ms_ssim(a, b, mo);
    std::cout << "MS-SSIM over " << r.n << " pairs: mean " << r.mean << " (min " << r.min << ", max " << r.max
              << ")\n";
    nlohmann::json j = r.to_json();
    j["a"] = a.spec;
    j["b"] = b.spec;
    finish(args, "msssim", j, t0);
    return 0;
}

int cmd_diversity(int argc, char** argv) {
    Args args("diversity",
              "Intra-prompt diversity of a generated set: the images are grouped by their prompt (the manifest's\n"
              "report column), and the mean pairwise MS-SSIM of each group with 2 or more images is averaged over\n"
              "the groups (lower = more diverse).",
              {{"manifest", "FILE", "the generated set's manifest .csv (required)", ""},
               {"size", "S", "common image side (>= 161 for 5 scales; smaller: fewer scales)", "256"},
               {"device", "DEV", "cpu or cuda[:n]", "cpu"},
               {"out", "FILE", "where to write the JSON (default: print it)", ""}});
    if (!args.parse(argc, argv)) return 0;
    CXR_CHECK(!args.get("manifest").empty(), "cxr diversity: --manifest is required (see --help)");
    const auto t0 = std::chrono::steady_clock::now();
    const MsSsimOptions mo = ms_ssim_options(args, "diversity");
    const ImageSet set = parse_image_set(args.get("manifest"));
    const PromptDiversityReport r = prompt_diversity(set, mo);
    std::cout << "intra-prompt MS-SSIM (" << r.groups << " prompts, " << r.images << " images): " << r.mean << "\n";
    nlohmann::json j = r.to_json();
    j["manifest"] = set.spec;
    j["size"] = mo.size;
    j["scale_weights"] = ms_ssim_scale_weights(mo.size);
    finish(args, "diversity", j, t0);
    return 0;
}

}  // namespace cxr::apps
