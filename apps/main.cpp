// cxr — the command-line program. `cxr --help` lists the subcommands; each has its own --help.
// Errors from the library arrive as cxr::Error: printed on stderr, exit code 1.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "tensor/error.h"

namespace {

struct Command {
    const char* name;
    const char* summary;
    int (*run)(int, char**);
};

const std::vector<Command>& commands() {
    static const std::vector<Command> list = {
        {"demo", "the whole study on built-in phantom data: four strategies, evaluation, fairness, HTML report",
         cxr::apps::cmd_demo},
        {"backends", "list the compute backends in this build and the devices present", cxr::apps::cmd_backends},
        {"version", "print the version, git commit and build flags", cxr::apps::cmd_version},
        {"evaluate", "AUROC/AUPRC with bootstrap CIs, fairness gaps and model comparisons from predictions",
         cxr::apps::cmd_evaluate},
        {"train-classifier", "train a ResNet/DenseNet classifier from a JSON config; evaluate its best checkpoint",
         cxr::apps::cmd_train_classifier},
        {"study", "train under the four real/synthetic strategies, evaluate performance and fairness, write a report",
         cxr::apps::cmd_study},
        {"image-metrics", "FID (Inception or classifier features) and MS-SSIM diversity of generated vs real images",
         cxr::apps::cmd_image_metrics},
        {"fid", "Fréchet Inception Distance between a real and a generated set (Inception or classifier features)",
         cxr::apps::cmd_fid},
        {"msssim", "MS-SSIM between paired images of two sets (e.g. reconstructions vs originals)",
         cxr::apps::cmd_msssim},
        {"diversity", "intra-prompt diversity: mean pairwise MS-SSIM of the images of each prompt", cxr::apps::cmd_diversity},
        {"train-diffusion", "fine-tune a Stable Diffusion folder on X-ray images and reports (RoentGen-style), resumable",
         cxr::apps::cmd_train_diffusion},
        {"generate", "text-to-image with a Stable Diffusion pipeline folder (diffusers' layout), guided, resumable",
         cxr::apps::cmd_generate},
        {"synthesize", "balanced synthetic set (all sex x race prompts per impression) with demographic-classifier QC "
                       "and retries, resumable",
         cxr::apps::cmd_synthesize},
        {"data", "dataset tools: inspect a dataset (counts as JSON), write the phantom dataset", cxr::apps::cmd_data},
        {"phantom", "write the built-in phantom chest-radiograph dataset (PNGs + manifest)", cxr::apps::cmd_phantom},
    };
    return list;
}

void print_help() {
    std::cout << "usage: cxr <command> [options]\n\n"
                 "cxr: synthetic chest radiographs and fair classifiers, from scratch in C++/CUDA.\n\ncommands:\n";
    for (const auto& c : commands()) {
        std::string n = c.name;
        std::cout << "  " << n << std::string(n.size() < 18 ? 18 - n.size() : 1, ' ') << c.summary << "\n";
    }
    std::cout << "\nRun `cxr <command> --help` for the options of one command.\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
        print_help();
        return argc < 2 ? 2 : 0;
    }
    for (const auto& c : commands()) {
        if (std::strcmp(argv[1], c.name) != 0) continue;
        try {
            return c.run(argc - 2, argv + 2);
        } catch (const cxr::Error& e) {
            std::cerr << "cxr " << c.name << ": error: " << e.what() << "\n";
            return 1;
        } catch (const std::exception& e) {
            std::cerr << "cxr " << c.name << ": unexpected error: " << e.what() << "\n";
            return 1;
        }
    }
    std::cerr << "cxr: unknown command '" << argv[1] << "' (run `cxr --help` for the list)\n";
    return 2;
}
