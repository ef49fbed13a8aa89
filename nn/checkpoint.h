// Checkpoints: a model's weights, its optimizer's state and a JSON sidecar, saved so that a crash at any moment
// leaves either the previous complete checkpoint or the new one — never a mix.
//
// Files of the checkpoint with stem S (e.g. "run/last"):
//   S.safetensors        the model's state dict with torch's key names (safetensors.torch.load_file(S.safetensors)
//                        then model.load_state_dict(...) works in PyTorch); metadata {"format": "pt", token}
//   S.optim.safetensors  the optimizer's state (nn/optim.h state_dict: moments, step counts, group lrs), when an
//                        optimizer is given; metadata {"optimizer": name, token}
//   S.json               the sidecar, written last: {"format": "cxr-checkpoint", "version": 1, "token": T,
//                        "files": {"model": "S.safetensors", "optimizer": "S.optim.safetensors" | null},
//                        "meta": {...}} where meta is the caller's (config, step, epoch, RNG state, git commit,
//                        build flags, metrics, ...).
// Atomicity: every file is written to a temporary name and renamed (tensor/io/safetensors.h, and the same here for
// the sidecar). Each save draws a fresh random token T and stores it in all three files; loading refuses files that
// do not carry the sidecar's token. A save runs in two phases so that an overwrite never destroys the previous
// checkpoint before the new one is complete: (1) the new files are written as S.new.safetensors /
// S.new.optim.safetensors and the sidecar is replaced by one naming them — the commit point; (2) they are renamed
// to S.safetensors / S.optim.safetensors and the sidecar is rewritten to name those. A crash in (1) leaves the
// previous checkpoint (its sidecar and files untouched); a crash in (2) leaves the new one, found under either
// name (the reader falls back from a missing ".new." name to the final one, and the token decides).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "nn/module.h"

namespace cxr::nn {

class Optimizer;

// Saves model (and optimizer when not null) with the caller's meta under stem.
void save_checkpoint(const std::string& stem, const Module& model, const Optimizer* optimizer,
                     const nlohmann::json& meta);

// True when the sidecar S.json exists (the checkpoint may still fail the token check on load).
bool checkpoint_exists(const std::string& stem);

struct LoadedCheckpoint {
    nlohmann::json meta;  // the caller's meta as saved
    StateDict weights;    // the model's state dict (CPU tensors)
    std::map<std::string, Tensor> optimizer;  // empty when the checkpoint has none
    std::string optimizer_name;               // "" when none
};

// Reads and verifies a checkpoint (sidecar format, files present, tokens equal). Errors name the file.
LoadedCheckpoint read_checkpoint(const std::string& stem);

// Reads a checkpoint and restores it: the weights into model (strict by default: every problem listed by key),
// the optimizer state when `optimizer` is not null (an error when the checkpoint has none, or a different
// optimizer type). Returns the meta.
nlohmann::json load_checkpoint(const std::string& stem, Module& model, Optimizer* optimizer = nullptr,
                               const LoadOptions& options = {});
// The same from a checkpoint already read (a caller that inspects the meta first does not read the files twice,
// which at Stable Diffusion scale means ~14 GB less); `stem` names it in errors.
nlohmann::json load_checkpoint(const LoadedCheckpoint& checkpoint, const std::string& stem, Module& model,
                               Optimizer* optimizer = nullptr, const LoadOptions& options = {});

}  // namespace cxr::nn
