// Module tree: registration, traversal, modes, freezing, state_dict and the strict load_state_dict
// (semantics of torch.nn.Module documented in nn/module.h).
#include "nn/module.h"

#include <set>
#include <sstream>

#include "tensor/autograd.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::nn {

using tensor::dtype_name;
using tensor::shape_str;

bool key_matches(const std::string& key, const std::string& pattern) {
    if (key == pattern) return true;
    const size_t dot = key.rfind('.');
    return dot != std::string::npos && key.compare(dot + 1, std::string::npos, pattern) == 0;
}

std::string LoadReport::str() const {
    std::ostringstream os;
    auto list = [&os](const char* title, const std::vector<std::string>& keys) {
        if (keys.empty()) return;
        os << "\n  " << title << " (" << keys.size() << "):";
        for (const auto& k : keys) os << "\n    " << k;
    };
    os << (ok() ? "state dict loaded" : "state dict does not match the module");
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    if (!mismatched.empty()) {
        os << "\n  shape mismatches (" << mismatched.size() << "):";
        for (const auto& m : mismatched)
            os << "\n    " << m.key << ": module has " << shape_str(m.expected) << ", state dict has "
               << shape_str(m.got);
    }
    list("dtype mismatches (conversion not allowed)", dtype_errors);
    list("ignored known extras", ignored);
    list("optional keys absent (kept)", absent_optional);
    list("converted", converted);
    return os.str();
}

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

Tensor Module::forward(const Tensor&) {
    CXR_FAIL("module ", type_name_, " has no single-tensor forward(); call its own forward method");
}

void Module::check_new_name(const std::string& name) const {
    CXR_CHECK(!name.empty() && name.find('.') == std::string::npos,
              "module ", type_name_, ": invalid name '", name, "' (must be non-empty and contain no '.')");
    bool taken = false;
    for (const auto& s : params_) taken = taken || s.name == name;
    for (const auto& s : buffers_) taken = taken || s.name == name;
    for (const auto& c : children_) taken = taken || c.first == name;
    CXR_CHECK(!taken, "module ", type_name_, ": '", name, "' already registered");
}

void Module::register_parameter(const std::string& name, Tensor& slot) {
    check_new_name(name);
    if (slot.defined() && tensor::is_floating(slot.dtype())) {
        if (!slot.is_leaf()) slot = slot.detach();
        slot.set_requires_grad(true);
    }
    params_.push_back({name, &slot, true});
}

void Module::register_buffer(const std::string& name, Tensor& slot, bool persistent) {
    check_new_name(name);
    buffers_.push_back({name, &slot, persistent});
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
    check_new_name(name);
    CXR_CHECK(module != nullptr, "module ", type_name_, ": child '", name, "' is null");
    children_.emplace_back(name, std::move(module));
}

std::shared_ptr<Module> Module::replace_module(const std::string& name, std::shared_ptr<Module> module) {
    CXR_CHECK(module != nullptr, "module ", type_name_, ": replacement for '", name, "' is null");
    for (auto& c : children_) {
        if (c.first == name) {
            c.second = std::move(module);
            return c.second;
        }
    }
    CXR_FAIL("module ", type_name_, " has no child '", name, "' to replace");
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
    for (const auto& c : children_)
        if (c.first == name) return c.second;
    return nullptr;
}

Module& Module::submodule(const std::string& path) {
    Module* m = this;
    size_t start = 0;
    while (start < path.size()) {
        size_t dot = path.find('.', start);
        if (dot == std::string::npos) dot = path.size();
        const std::string part = path.substr(start, dot - start);
        std::shared_ptr<Module> c = m->child(part);
        CXR_CHECK(c != nullptr, "no submodule '", path, "' (", m->type_name(), " has no child '", part, "')");
        m = c.get();
        start = dot + 1;
    }
    return *m;
}

void Module::collect_modules(const std::string& prefix, std::vector<std::pair<std::string, Module*>>& out) {
    out.emplace_back(prefix, this);
    for (auto& c : children_) c.second->collect_modules(prefix.empty() ? c.first : prefix + "." + c.first, out);
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
    std::vector<std::pair<std::string, Module*>> out;
    collect_modules("", out);
    return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
    for (auto& c : children_) c.second->apply(fn);
    fn(*this);
}

void Module::visit(const std::function<void(const std::string&, Module&)>& fn) {
    for (auto& [path, m] : named_modules()) fn(path, *m);
}

void Module::collect_slots(const std::string& prefix, bool params, bool buffers, bool persistent_only, bool recurse,
                           std::vector<std::pair<std::string, Tensor*>>& out) const {
    auto key = [&prefix](const std::string& n) { return prefix.empty() ? n : prefix + "." + n; };
    if (params)
        for (const auto& s : params_)
            if (s.tensor->defined()) out.emplace_back(key(s.name), s.tensor);
    if (buffers)
        for (const auto& s : buffers_)
            if (s.tensor->defined() && (s.persistent || !persistent_only)) out.emplace_back(key(s.name), s.tensor);
    if (!recurse) return;
    for (const auto& c : children_) c.second->collect_slots(key(c.first), params, buffers, persistent_only, true, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
    std::vector<std::pair<std::string, Tensor*>> slots;
    collect_slots("", true, false, false, recurse, slots);
    std::vector<std::pair<std::string, Tensor>> out;
    std::set<const tensor::TensorImpl*> seen;  // a shared parameter is listed once, as torch
    for (auto& [k, t] : slots)
        if (seen.insert(t->impl_ptr().get()).second) out.emplace_back(k, *t);
    return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
    std::vector<Tensor> out;
    for (auto& kv : named_parameters(recurse)) out.push_back(kv.second);
    return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
    std::vector<std::pair<std::string, Tensor*>> slots;
    collect_slots("", false, true, false, recurse, slots);
    std::vector<std::pair<std::string, Tensor>> out;
    for (auto& [k, t] : slots) out.emplace_back(k, *t);
    return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
    std::vector<Tensor> out;
    for (auto& kv : named_buffers(recurse)) out.push_back(kv.second);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (auto& kv : named_parameters()) n += kv.second.numel();
    return n;
}

void Module::train(bool on) {
    apply([on](Module& m) { m.training_ = on; });
}

void Module::zero_grad() {
    for (auto& kv : named_parameters()) kv.second.zero_grad();
}

void Module::set_requires_grad(bool on) {
    for (auto& kv : named_parameters()) {
        if (on && !tensor::is_floating(kv.second.dtype())) continue;
        kv.second.set_requires_grad(on);
    }
}

StateDict Module::state_dict() const {
    std::vector<std::pair<std::string, Tensor*>> slots;
    collect_slots("", true, true, true, true, slots);
    StateDict out;
    for (auto& [k, t] : slots) out[k] = t->detach();
    return out;
}

LoadReport Module::load_state_dict(const StateDict& state, const LoadOptions& options) {
    std::vector<std::pair<std::string, Tensor*>> slots;
    collect_slots("", true, true, true, true, slots);
    auto matches_any = [](const std::string& key, const std::vector<std::string>& patterns) {
        for (const auto& p : patterns)
            if (key_matches(key, p)) return true;
        return false;
    };

    // 1. Check everything before writing anything.
    LoadReport report;
    std::set<std::string> module_keys;
    struct Copy {
        std::string key;
        Tensor* slot;
        Tensor src;
    };
    std::vector<Copy> to_copy;
    for (auto& [key, slot] : slots) {
        module_keys.insert(key);
        auto it = state.find(key);
        if (it == state.end()) {
            (matches_any(key, options.optional_keys) ? report.absent_optional : report.missing).push_back(key);
            continue;
        }
        const Tensor& src = it->second;
        CXR_CHECK(src.defined(), "load_state_dict: state dict entry '", key, "' is an undefined tensor");
        if (src.sizes() != slot->sizes()) {
            report.mismatched.push_back({key, slot->sizes(), src.sizes()});
            continue;
        }
        if (src.dtype() != slot->dtype()) {
            const std::string what = key + " (" + dtype_name(src.dtype()) + " -> " + dtype_name(slot->dtype()) + ")";
            const bool float_pair = tensor::is_floating(src.dtype()) == tensor::is_floating(slot->dtype());
            if (!options.allow_dtype_conversion || !float_pair) {
                report.dtype_errors.push_back(what);
                continue;
            }
            report.converted.push_back(what);
        }
        to_copy.push_back({key, slot, src});
    }
    for (const auto& kv : state) {
        if (module_keys.count(kv.first)) continue;
        (matches_any(kv.first, options.ignored_extras) ? report.ignored : report.unexpected).push_back(kv.first);
    }
    if (options.strict && !report.ok())
        CXR_FAIL("load_state_dict into ", type_name_, " (strict): ", report.str());

    // 2. Copy (in place, outside autograd, so parameters stay the same leaves).
    tensor::NoGradGuard no_grad;
    for (auto& c : to_copy) {
        c.slot->copy_(c.src);
        report.loaded.push_back(c.key);
    }
    return report;
}

void Module::convert_slots(const std::function<Tensor(const Tensor&)>& convert) {
    tensor::NoGradGuard no_grad;
    for (auto& [path, m] : named_modules()) {
        (void)path;
        for (auto& s : m->params_) {
            if (!s.tensor->defined()) continue;
            const bool rg = s.tensor->requires_grad();
            Tensor t = convert(*s.tensor);
            if (t.same(*s.tensor)) continue;
            t = t.detach();
            if (rg) t.set_requires_grad(true);
            *s.tensor = t;
        }
        for (auto& s : m->buffers_)
            if (s.tensor->defined()) *s.tensor = convert(*s.tensor).detach();
    }
}

void Module::to(Device device) {
    convert_slots([device](const Tensor& t) { return t.device() == device ? t : tensor::to_device(t, device); });
}

void Module::to(DType dtype) {
    CXR_CHECK(tensor::is_floating(dtype), "Module::to(dtype) needs a floating dtype, got ", dtype_name(dtype));
    convert_slots([dtype](const Tensor& t) {
        return tensor::is_floating(t.dtype()) && t.dtype() != dtype ? tensor::cast(t, dtype) : t;
    });
}

void Module::str_into(std::string& out, int indent) const {
    out += type_name_ + "(";
    const std::string extra = extra_repr();
    if (children_.empty()) {
        out += extra + ")";
        return;
    }
    const std::string pad(indent + 2, ' ');
    if (!extra.empty()) out += "\n" + pad + extra;
    for (const auto& [name, c] : children_) {
        out += "\n" + pad + "(" + name + "): ";
        c->str_into(out, indent + 2);
    }
    out += "\n" + std::string(indent, ' ') + ")";
}

std::string Module::str() const {
    std::string out;
    str_into(out, 0);
    return out;
}

}  // namespace cxr::nn
