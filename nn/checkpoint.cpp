// Checkpoints (nn/checkpoint.h): weights + optimizer state + sidecar, tied together by a per-save token.
#include "nn/checkpoint.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <unistd.h>

#include "nn/optim.h"
#include "tensor/error.h"
#include "tensor/io/tensor_file.h"

namespace cxr::nn {

namespace fs = std::filesystem;

namespace {

constexpr int kVersion = 1;

std::string new_token() {
    std::random_device rd;
    const uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ (t * 0x9E3779B97F4A7C15ULL);
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
    return buf;
}

std::string file_name(const std::string& path) { return fs::path(path).filename().string(); }

void write_text_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        CXR_CHECK(out.good(), "save_checkpoint: cannot create '", tmp, "'");
        out << text;
        out.flush();
        if (!out.good()) {
            std::remove(tmp.c_str());
            CXR_FAIL("save_checkpoint: writing '", tmp, "' failed");
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        CXR_FAIL("save_checkpoint: renaming '", tmp, "' to '", path, "' failed: ", ec.message());
    }
}

std::string token_of(const tensor::TensorFile& f, const std::string& path) {
    auto it = f.metadata.find("cxr_checkpoint_token");
    CXR_CHECK(it != f.metadata.end(), "checkpoint file '", path, "' has no cxr_checkpoint_token in its metadata");
    return it->second;
}

}  // namespace

void save_checkpoint(const std::string& stem, const Module& model, const Optimizer* optimizer,
                     const nlohmann::json& meta) {
    const fs::path dir = fs::path(stem).parent_path();
    if (!dir.empty()) fs::create_directories(dir);
    const std::string token = new_token();
    const std::string model_path = stem + ".safetensors", optim_path = stem + ".optim.safetensors";
    const std::string model_new = stem + ".new.safetensors", optim_new = stem + ".new.optim.safetensors";

    // Phase 1: the new files under the ".new" names, then the sidecar naming them (the commit point: from here on
    // the new checkpoint is the valid one, and until here the previous one was untouched).
    std::map<std::string, Tensor> weights;
    for (const auto& [k, v] : model.state_dict()) weights[k] = v;
    tensor::save_tensor_file(model_new, weights, {{"format", "pt"}, {"cxr_checkpoint_token", token}});
    if (optimizer)
        tensor::save_tensor_file(optim_new, optimizer->state_dict(),
                                 {{"optimizer", optimizer->name()}, {"cxr_checkpoint_token", token}});
    auto sidecar = [&](const std::string& model_file, const std::string& optim_file) {
        nlohmann::json files = {{"model", file_name(model_file)},
                                {"optimizer", optimizer ? nlohmann::json(file_name(optim_file)) : nlohmann::json()}};
        return nlohmann::json{{"format", "cxr-checkpoint"}, {"version", kVersion}, {"token", token},
                              {"files", files}, {"meta", meta}}.dump(2) + "\n";
    };
    write_text_atomically(stem + ".json", sidecar(model_new, optim_new));
    // Phase 2: the files take their final names (S.safetensors is what PyTorch users load), then the sidecar
    // names those. A crash in between leaves a sidecar naming ".new" files that were already renamed: the reader
    // then takes the final name when it carries the sidecar's token.
    fs::rename(model_new, model_path);
    std::error_code ec;
    if (optimizer) fs::rename(optim_new, optim_path);
    else fs::remove(optim_path, ec);  // a stale one from an earlier save must not be mistaken for this one's
    write_text_atomically(stem + ".json", sidecar(model_path, optim_path));
}

bool checkpoint_exists(const std::string& stem) { return fs::exists(stem + ".json"); }

LoadedCheckpoint read_checkpoint(const std::string& stem) {
    const std::string side_path = stem + ".json";
    std::ifstream in(side_path);
    CXR_CHECK(in.good(), "checkpoint '", stem, "': no sidecar '", side_path,
              "' (not a checkpoint, or a save that did not complete)");
    nlohmann::json side;
    try {
        side = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        CXR_FAIL("checkpoint sidecar '", side_path, "' is not valid JSON: ", e.what());
    }
    CXR_CHECK(side.is_object() && side.value("format", "") == "cxr-checkpoint", "'", side_path,
              "' is not a cxr checkpoint sidecar (\"format\" is not \"cxr-checkpoint\")");
    CXR_CHECK(side.value("version", 0) == kVersion, "'", side_path, "': checkpoint version ",
              side.value("version", 0), " is not supported (this build reads version ", kVersion, ")");
    CXR_CHECK(side.contains("token") && side["token"].is_string() && side.contains("files") &&
                  side["files"].is_object() && side["files"].contains("model"),
              "'", side_path, "': the sidecar lacks \"token\" or \"files.model\"");
    const std::string token = side["token"];
    const fs::path dir = fs::path(stem).parent_path();
    // A name ".new.<x>" whose file is gone was renamed to its final name by the second phase of the save (see
    // save_checkpoint); the token check below still decides whether that file belongs to this sidecar.
    auto resolve = [&](const std::string& name) {
        const std::string path = (dir / name).string();
        const size_t at = name.find(".new.");
        if (fs::exists(path) || at == std::string::npos) return path;
        return (dir / (name.substr(0, at) + name.substr(at + 4))).string();
    };

    LoadedCheckpoint out;
    out.meta = side.value("meta", nlohmann::json::object());
    const std::string model_path = resolve(side["files"]["model"].get<std::string>());
    CXR_CHECK(fs::exists(model_path), "checkpoint '", stem, "': weights file '", model_path, "' is missing");
    tensor::TensorFile wf = tensor::load_tensor_file(model_path);
    CXR_CHECK(token_of(wf, model_path) == token, "checkpoint '", stem, "': '", model_path,
              "' belongs to another save than '", side_path,
              "' (a save was interrupted; use an earlier checkpoint or retrain)");
    for (auto& [k, v] : wf.tensors) out.weights[k] = v;
    const auto& optim = side["files"].value("optimizer", nlohmann::json());
    if (optim.is_string()) {
        const std::string optim_path = resolve(optim.get<std::string>());
        CXR_CHECK(fs::exists(optim_path), "checkpoint '", stem, "': optimizer file '", optim_path, "' is missing");
        tensor::TensorFile of = tensor::load_tensor_file(optim_path);
        CXR_CHECK(token_of(of, optim_path) == token, "checkpoint '", stem, "': '", optim_path,
                  "' belongs to another save than '", side_path, "' (a save was interrupted)");
        out.optimizer = std::move(of.tensors);
        auto it = of.metadata.find("optimizer");
        out.optimizer_name = it == of.metadata.end() ? "" : it->second;
    }
    return out;
}

nlohmann::json load_checkpoint(const std::string& stem, Module& model, Optimizer* optimizer,
                               const LoadOptions& options) {
    return load_checkpoint(read_checkpoint(stem), stem, model, optimizer, options);
}

nlohmann::json load_checkpoint(const LoadedCheckpoint& ck, const std::string& stem, Module& model,
                               Optimizer* optimizer, const LoadOptions& options) {
    if (optimizer) {
        CXR_CHECK(!ck.optimizer.empty(), "checkpoint '", stem, "' holds no optimizer state");
        CXR_CHECK(ck.optimizer_name == optimizer->name(), "checkpoint '", stem, "' holds ", ck.optimizer_name,
                  " state; the optimizer is ", optimizer->name());
    }
    model.load_state_dict(ck.weights, options);  // strict: throws listing every problem by key
    if (optimizer) optimizer->load_state_dict(ck.optimizer);
    return ck.meta;
}

}  // namespace cxr::nn
