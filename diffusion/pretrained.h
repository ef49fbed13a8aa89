// Diffusers / transformers folders on disk (DESIGN.md §4: "diffusers pipeline folders (model_index.json, subfolder
// configs, fp16 variants, sharded index files); outputs are written in the same layouts").
//
// A pipeline folder (what `StableDiffusionPipeline.save_pretrained` writes and the Hugging Face hub serves):
//   model_index.json          {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "...",
//                              "unet": ["diffusers", "UNet2DConditionModel"], "vae": [...],
//                              "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": [...],
//                              "scheduler": ["diffusers", "PNDMScheduler"], "safety_checker": [null, null], ...}
//   <component>/config.json   the component's constructor arguments (scheduler/scheduler_config.json for schedulers)
//   <component>/<weights>     one of, for base = "diffusion_pytorch_model" (diffusers) or "model" (transformers):
//       base.safetensors                                  one file
//       base.safetensors.index.json + base-0000i-of-0000n.safetensors     shards; the index's "weight_map"
//                                                         maps every key to its shard file
//     and with a variant V (e.g. "fp16"), V inserted before the last extension, as diffusers names them:
//       base.V.safetensors,  base.safetensors.index.V.json + base.V-0000i-of-0000n.safetensors
// PyTorch pickles (*.bin, *.ckpt) are refused with a message saying how to convert them: reading them would need
// a pickle interpreter, and they can run code.
//
// Reading a component's weights: the first present candidate is taken (the variant's files when a variant is asked
// for, else the plain ones; a one-file set before a sharded one); for shards every key of the weight map must be
// found in the shard it names and every tensor of a shard must be in the map (each mismatch is an error naming the
// file), and keys are unique across shards. The values keep their stored dtype (a module's load_state_dict converts).
//
// Writing (save_component): config.json and one base.safetensors (or base.V.safetensors), each written to a
// temporary name and renamed, so an interrupted save never leaves a half-written file under the final name.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.h"

namespace cxr::diffusion {

// One entry of model_index.json: the library and class of a component, or null/null for an absent one.
struct PipelineComponent {
    std::string library;     // "diffusers", "transformers" ("" when absent)
    std::string class_name;  // "UNet2DConditionModel", ... ("" when absent)
    bool present() const { return !class_name.empty(); }
};

struct PipelineIndex {
    std::string class_name;         // "_class_name"
    std::string diffusers_version;  // "_diffusers_version" ("" when missing)
    std::map<std::string, PipelineComponent> components;  // every non-underscore key
    nlohmann::json raw;
};

// Reads <root>/model_index.json. Errors name the file and the bad entry.
PipelineIndex read_pipeline_index(const std::string& root);

// Reads <dir>/config.json, or <dir>/scheduler_config.json when config.json is absent (schedulers). Throws naming
// the folder when neither exists or the JSON does not parse.
nlohmann::json read_component_config(const std::string& dir);

struct ComponentWeights {
    nn::StateDict tensors;            // by key, in their stored dtype, on the CPU
    std::vector<std::string> files;   // the files read, in order
    std::string base;                 // "diffusion_pytorch_model" or "model"
    bool sharded = false;
};

// Reads the weights of the component folder `dir` (see above for the names tried). variant "" = the plain files.
ComponentWeights read_component_weights(const std::string& dir, const std::string& variant = "");

// Whether `dir` has weights of that variant (a one-file or an index file, for either base name).
bool has_component_weights(const std::string& dir, const std::string& variant = "");

// The weight-file name diffusers uses: base[.variant].safetensors.
std::string weights_file_name(const std::string& base, const std::string& variant = "");

// Loads a component folder's weights into `module` (strict unless options say otherwise) and returns the report.
// The error of a failed strict load names the folder.
nn::LoadReport load_component(nn::Module& module, const std::string& dir, const std::string& variant = "",
                              const nn::LoadOptions& options = {});

// Writes `text` to `path` through a temporary file in the same folder and a rename; a failed write (a full disk)
// throws and leaves `path` as it was.
void write_file_atomically(const std::string& path, const std::string& text);

// Writes <dir>/config.json and <dir>/<base>[.variant].safetensors from the module's state dict (dir is created).
// `metadata` goes into the safetensors header ({"format": "pt"} is always added, as torch's save_file expects).
void save_component(const std::string& dir, const nlohmann::json& config, const nn::Module& module,
                    const std::string& base = "diffusion_pytorch_model", const std::string& variant = "");

}  // namespace cxr::diffusion
