// Diffusers / transformers folders: model_index.json, component configs, one-file and sharded safetensors weights
// with variants, and saving in the same layout (the rules are in diffusion/pretrained.h).
#include "diffusion/pretrained.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>

#include "tensor/io/tensor_file.h"

namespace cxr::diffusion {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json_file(const fs::path& path, const std::string& what) {
    std::ifstream in(path);
    CXR_CHECK(in.good(), what, ": cannot open ", path.string());
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
        CXR_FAIL(what, ": ", path.string(), " is not valid JSON (", e.what(), ")");
    }
}

// base.safetensors.index.json -> base.safetensors.index.V.json; base.safetensors -> base.V.safetensors (the variant
// goes before the last extension, as diffusers' _add_variant does).
std::string with_variant(const std::string& name, const std::string& variant) {
    if (variant.empty()) return name;
    const size_t dot = name.rfind('.');
    return name.substr(0, dot) + "." + variant + name.substr(dot);
}

}  // namespace

void write_file_atomically(const std::string& path_text, const std::string& text) {
    const fs::path path(path_text);
    const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        CXR_CHECK(out.good(), "cannot write ", tmp.string());
        out << text;
        out.flush();
        if (!out.good()) {
            out.close();
            std::error_code ec;
            fs::remove(tmp, ec);
            CXR_FAIL("writing ", tmp.string(), " failed (disk full?)");
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        CXR_FAIL("cannot rename ", tmp.string(), " to ", path.string());
    }
}

PipelineIndex read_pipeline_index(const std::string& root) {
    const fs::path path = fs::path(root) / "model_index.json";
    CXR_CHECK(fs::exists(path), "read_pipeline_index: ", root, " has no model_index.json (is it a diffusers pipeline ",
              "folder? a single component folder holds config.json instead)");
    PipelineIndex index;
    index.raw = read_json_file(path, "read_pipeline_index");
    CXR_CHECK(index.raw.is_object(), "read_pipeline_index: ", path.string(), " is not a JSON object");
    for (const auto& [key, value] : index.raw.items()) {
        if (key == "_class_name") {
            CXR_CHECK(value.is_string(), "read_pipeline_index: ", path.string(), ": _class_name is not a string");
            index.class_name = value.get<std::string>();
        } else if (key == "_diffusers_version") {
            if (value.is_string()) index.diffusers_version = value.get<std::string>();
        } else if (!key.empty() && key[0] == '_') {
            continue;  // other private keys (_name_or_path, ...)
        } else if (value.is_array() && value.size() == 2) {
            // ["library", "Class"], or [null, null] for a component saved as absent
            PipelineComponent c;
            if (value[0].is_string()) c.library = value[0].get<std::string>();
            if (value[1].is_string()) c.class_name = value[1].get<std::string>();
            CXR_CHECK(value[0].is_null() == value[1].is_null() && (value[0].is_null() || value[0].is_string()) &&
                              (value[1].is_null() || value[1].is_string()),
                      "read_pipeline_index: ", path.string(), ": entry \"", key,
                      "\" must be [library, class] strings or [null, null]");
            index.components[key] = c;
        }
        // other pipeline arguments (requires_safety_checker: bool, ...) are not components
    }
    CXR_CHECK(!index.class_name.empty(), "read_pipeline_index: ", path.string(), " has no _class_name");
    return index;
}

nlohmann::json read_component_config(const std::string& dir) {
    for (const char* name : {"config.json", "scheduler_config.json"}) {
        const fs::path path = fs::path(dir) / name;
        if (fs::exists(path)) {
            nlohmann::json j = read_json_file(path, "read_component_config");
            CXR_CHECK(j.is_object(), "read_component_config: ", path.string(), " is not a JSON object");
            return j;
        }
    }
    CXR_FAIL("read_component_config: ", dir, " has neither config.json nor scheduler_config.json");
}

std::string weights_file_name(const std::string& base, const std::string& variant) {
    return with_variant(base + ".safetensors", variant);
}

bool has_component_weights(const std::string& dir, const std::string& variant) {
    for (const std::string base : {"diffusion_pytorch_model", "model"})
        if (fs::exists(fs::path(dir) / weights_file_name(base, variant)) ||
            fs::exists(fs::path(dir) / with_variant(base + ".safetensors.index.json", variant)))
            return true;
    return false;
}

ComponentWeights read_component_weights(const std::string& dir, const std::string& variant) {
    CXR_CHECK(fs::is_directory(dir), "read_component_weights: ", dir, " is not a folder");
    ComponentWeights w;
    for (const std::string base : {"diffusion_pytorch_model", "model"}) {
        const fs::path single = fs::path(dir) / weights_file_name(base, variant);
        const fs::path index = fs::path(dir) / with_variant(base + ".safetensors.index.json", variant);
        if (fs::exists(single)) {
            tensor::TensorFile f = tensor::load_tensor_file(single.string());
            w.tensors.insert(f.tensors.begin(), f.tensors.end());
            w.files.push_back(single.string());
            w.base = base;
            return w;
        }
        if (!fs::exists(index)) continue;
        const nlohmann::json j = read_json_file(index, "read_component_weights");
        CXR_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
                  "read_component_weights: ", index.string(), " has no \"weight_map\" object");
        std::map<std::string, std::set<std::string>> keys_of_shard;  // shard file -> the keys the map puts there
        for (const auto& [key, file] : j["weight_map"].items()) {
            CXR_CHECK(file.is_string(), "read_component_weights: ", index.string(), ": the shard of \"", key,
                      "\" is not a file name");
            const std::string name = file.get<std::string>();
            CXR_CHECK(name.find('/') == std::string::npos && name != ".." && !name.empty(),
                      "read_component_weights: ", index.string(), ": shard name \"", name, "\" of \"", key,
                      "\" must be a file in the same folder");
            keys_of_shard[name].insert(key);
        }
        CXR_CHECK(!keys_of_shard.empty(), "read_component_weights: ", index.string(), " maps no tensors");
        for (const auto& [name, keys] : keys_of_shard) {
            const fs::path shard = fs::path(dir) / name;
            CXR_CHECK(fs::exists(shard), "read_component_weights: shard ", shard.string(), " named by ",
                      index.string(), " is missing");
            tensor::TensorFile f = tensor::load_tensor_file(shard.string());
            for (const auto& key : keys)
                CXR_CHECK(f.tensors.count(key) == 1, "read_component_weights: ", index.string(), " puts \"", key,
                          "\" in ", name, ", which does not hold it");
            for (auto& [key, t] : f.tensors) {
                CXR_CHECK(keys.count(key) == 1, "read_component_weights: ", shard.string(), " holds \"", key,
                          "\", which ", index.string(), " does not assign to it");
                CXR_CHECK(w.tensors.count(key) == 0, "read_component_weights: \"", key, "\" is in two shards");
                w.tensors[key] = t;
            }
            w.files.push_back(shard.string());
        }
        w.base = base;
        w.sharded = true;
        return w;
    }
    // Nothing usable: say what is there.
    std::vector<std::string> pickles, others;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        const std::string ext = e.path().extension().string();
        if (ext == ".bin" || ext == ".ckpt" || ext == ".pt" || ext == ".pth") pickles.push_back(name);
        else if (ext == ".safetensors") others.push_back(name);
    }
    std::ostringstream msg;
    msg << "read_component_weights: " << dir << " has no "
        << weights_file_name("diffusion_pytorch_model", variant) << " or " << weights_file_name("model", variant)
        << " (one file or a sharded .index" << (variant.empty() ? "" : "." + variant) << ".json set)";
    if (!pickles.empty())
        msg << "; it has PyTorch pickle weights (" << pickles.front()
            << "), which cxr does not read: convert them once with diffusers' save_pretrained(..., "
               "safe_serialization=True)";
    if (!others.empty())
        msg << "; other safetensors files there: " << others.front()
            << (variant.empty() ? " (a variant such as fp16? pass it as the variant)" : "");
    CXR_FAIL(msg.str());
}

nn::LoadReport load_component(nn::Module& module, const std::string& dir, const std::string& variant,
                              const nn::LoadOptions& options) {
    ComponentWeights w = read_component_weights(dir, variant);
    try {
        return module.load_state_dict(w.tensors, options);
    } catch (const Error& e) {
        CXR_FAIL("loading ", dir, " (", w.files.size(), " weight file", w.files.size() == 1 ? "" : "s", ") into ",
                 module.type_name(), ": ", e.what());
    }
}

void save_component(const std::string& dir, const nlohmann::json& config, const nn::Module& module,
                    const std::string& base, const std::string& variant) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    CXR_CHECK(fs::is_directory(dir), "save_component: cannot create the folder ", dir);
    const nn::StateDict sd = module.state_dict();
    tensor::save_tensor_file((fs::path(dir) / weights_file_name(base, variant)).string(),
                             std::map<std::string, tensor::Tensor>(sd.begin(), sd.end()), {{"format", "pt"}});
    write_file_atomically((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");
}

}  // namespace cxr::diffusion
