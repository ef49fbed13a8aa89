// Module: the node of a model tree (DESIGN.md §4). A module owns named parameters (trainable leaf tensors),
// named buffers (state that is saved but not trained, e.g. BatchNorm's running statistics) and named child
// modules. Names join with dots along the tree, so the dotted paths are the PyTorch state-dict keys
// ("features.denseblock1.denselayer1.conv1.weight"), following torch.nn.Module's conventions:
//   - state_dict() = every parameter and every persistent buffer, keyed by its dotted path;
//   - load_state_dict() is strict by default: it checks the whole dictionary first (missing keys, unexpected keys,
//     shape mismatches, each listed by name) and throws cxr::Error listing all of them before anything is
//     written, so a failed load leaves the module as it was. Values of another dtype are converted (and listed).
//     Known harmless extras are ignored by name only (LoadOptions::ignored_extras, default {"position_ids"}), and
//     keys that old checkpoints may lack are tolerated by name (LoadOptions::optional_keys, default
//     {"num_batches_tracked"}, as torch's BatchNorm accepts pre-0.4 checkpoints without it);
//   - train()/eval() set the mode of the whole subtree; freeze()/unfreeze() turn requires_grad off/on for every
//     parameter of the subtree; to(device)/to(dtype) move or convert every tensor (only floating ones for dtype,
//     as torch's Module.to).
//
// Ownership: modules are created with std::make_shared and are neither copyable nor movable, because the
// registry keeps pointers to the layer's own Tensor members (so `conv->weight` is the registered parameter and
// replacing a slot by to() or load updates the member). A parent keeps its children as shared_ptr.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/error.h"
#include "tensor/tensor.h"

namespace cxr::nn {

using tensor::Device;
using tensor::DType;
using tensor::Shape;
using tensor::Tensor;

// A state dictionary: dotted key -> tensor (sorted by key; save it with tensor::save_tensor_file).
using StateDict = std::map<std::string, Tensor>;

struct LoadOptions {
    // strict: any missing key, unexpected key or shape mismatch is an error (nothing is loaded).
    // Not strict: the keys that match in name and shape are loaded; the rest is only reported.
    bool strict = true;
    // Keys in the dictionary that the module does not have and that are dropped without error, matched against
    // the whole key or its last dotted component. Each dropped key is listed in LoadReport::ignored.
    std::vector<std::string> ignored_extras = {"position_ids"};
    // Module keys that may be absent from the dictionary (they keep their current value), matched the same way.
    std::vector<std::string> optional_keys = {"num_batches_tracked"};
    // Whether a value of another dtype may be converted (listed in LoadReport::converted); false makes it an error.
    bool allow_dtype_conversion = true;
};

struct ShapeMismatch {
    std::string key;
    Shape expected;  // the module's
    Shape got;       // the dictionary's
};

struct LoadReport {
    std::vector<std::string> loaded;      // keys copied into the module
    std::vector<std::string> missing;     // module keys absent from the dictionary (not optional)
    std::vector<std::string> unexpected;  // dictionary keys the module does not have (not ignored)
    std::vector<ShapeMismatch> mismatched;
    std::vector<std::string> ignored;     // dictionary keys dropped as known harmless extras
    std::vector<std::string> absent_optional;  // optional module keys absent from the dictionary
    std::vector<std::string> converted;   // "key (f16 -> f32)"
    std::vector<std::string> dtype_errors;  // when allow_dtype_conversion is false
    bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty() && dtype_errors.empty(); }
    // A readable listing of every problem (and of ignored/converted keys).
    std::string str() const;
};

class Module {
public:
    explicit Module(std::string type_name);
    virtual ~Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    // The class name, as torch prints it ("Conv2d", "Sequential", "DenseNet").
    const std::string& type_name() const { return type_name_; }

    // ---- forward ----
    // Single-tensor forward, implemented by every layer (modules with other signatures add their own methods;
    // the default throws naming the module type).
    virtual Tensor forward(const Tensor& x);
    Tensor operator()(const Tensor& x) { return forward(x); }

    // ---- registration (called by constructors) ----
    // Registers the member `slot` as parameter `name`. An undefined slot (e.g. bias=false) is registered but
    // listed nowhere, as torch's register_parameter(name, None). A defined floating slot is made a leaf that
    // requires grad.
    void register_parameter(const std::string& name, Tensor& slot);
    // Registers the member `slot` as buffer `name`; non-persistent buffers are left out of state_dict().
    void register_buffer(const std::string& name, Tensor& slot, bool persistent = true);
    // Registers a child; returns it (typed) so that a constructor can write `conv = register_module("conv", ...)`.
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, module);
        return module;
    }
    // Replaces an existing child (e.g. a new classifier head). A typed member that pointed at the old child must
    // be reassigned by the caller.
    std::shared_ptr<Module> replace_module(const std::string& name, std::shared_ptr<Module> module);

    // ---- the tree ----
    // Direct children in registration order.
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
    // This module (path "") and every descendant, pre-order; paths are dotted.
    std::vector<std::pair<std::string, Module*>> named_modules();
    // The descendant at a dotted path ("features.denseblock1"); "" is this module. Throws naming the path.
    Module& submodule(const std::string& path);
    std::shared_ptr<Module> child(const std::string& name) const;  // null when absent
    // Calls fn on every descendant (children first) and then on this module, as torch's Module.apply.
    void apply(const std::function<void(Module&)>& fn);
    // Calls fn(path, module) on this module and every descendant, pre-order.
    void visit(const std::function<void(const std::string& path, Module& module)>& fn);

    // ---- parameters and buffers (registration order, depth first; undefined slots skipped) ----
    std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
    std::vector<Tensor> parameters(bool recurse = true) const;
    std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
    std::vector<Tensor> buffers(bool recurse = true) const;
    int64_t num_parameters() const;  // total element count

    // ---- mode ----
    void train(bool on = true);  // this module and every descendant
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // ---- gradients and freezing ----
    void zero_grad();                       // drops every parameter's .grad
    void set_requires_grad(bool on);        // every parameter of the subtree
    void freeze() { set_requires_grad(false); }
    void unfreeze() { set_requires_grad(true); }

    // ---- state ----
    // Every parameter and persistent buffer by dotted key; the values are detached views sharing the module's
    // storage (as torch): clone them to keep a snapshot.
    StateDict state_dict() const;
    LoadReport load_state_dict(const StateDict& state, const LoadOptions& options = {});

    // ---- conversion (replaces every registered tensor by a converted leaf; requires_grad is kept) ----
    void to(Device device);
    void to(DType dtype);  // floating parameters and buffers only

    // A torch-like printout of the tree: "Sequential(\n  (0): Conv2d(3, 4, kernel_size=(3, 3), ...)\n ...)".
    std::string str() const;
    // One line of this module's settings, shown inside the parentheses of str().
    virtual std::string extra_repr() const { return ""; }

private:
    struct Slot {
        std::string name;
        Tensor* tensor;
        bool persistent;
    };
    void add_child(const std::string& name, std::shared_ptr<Module> module);
    void check_new_name(const std::string& name) const;
    void collect_modules(const std::string& prefix, std::vector<std::pair<std::string, Module*>>& out);
    // Every registered, defined tensor slot of the subtree with its dotted key.
    void collect_slots(const std::string& prefix, bool params, bool buffers, bool persistent_only, bool recurse,
                       std::vector<std::pair<std::string, Tensor*>>& out) const;
    void convert_slots(const std::function<Tensor(const Tensor&)>& convert);
    void str_into(std::string& out, int indent) const;

    std::string type_name_;
    bool training_ = true;
    std::vector<Slot> params_;
    std::vector<Slot> buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// True when `key` equals `pattern` or its last dotted component equals it (the matching of LoadOptions lists).
bool key_matches(const std::string& key, const std::string& pattern);

}  // namespace cxr::nn
