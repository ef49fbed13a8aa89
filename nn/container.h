// Containers with torch.nn's naming: Sequential (children run in order; named "0", "1", ... when pushed without
// a name, or by the given names, as torch's Sequential(OrderedDict(...)) — e.g. torchvision DenseNet's
// "features.conv0", "features.denseblock1") and ModuleList (children "0", "1", ...; no forward of its own).
#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "nn/module.h"

namespace cxr::nn {

class Sequential : public Module {
public:
    Sequential() : Module("Sequential") {}
    explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
    explicit Sequential(std::vector<std::pair<std::string, std::shared_ptr<Module>>> named);

    // Appends under the name size() ("0", "1", ...); returns the module (typed).
    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
        return register_module(std::to_string(size()), std::move(module));
    }
    // Appends under an explicit name.
    template <class M>
    std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> module) {
        return register_module(name, std::move(module));
    }
    size_t size() const { return named_children().size(); }
    std::shared_ptr<Module> operator[](size_t i) const;

    Tensor forward(const Tensor& x) override;  // x -> m_0 -> m_1 -> ...
};

class ModuleList : public Module {
public:
    ModuleList() : Module("ModuleList") {}
    explicit ModuleList(std::vector<std::shared_ptr<Module>> modules);

    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
        return register_module(std::to_string(size()), std::move(module));
    }
    size_t size() const { return named_children().size(); }
    std::shared_ptr<Module> operator[](size_t i) const;
    // The i-th module cast to its type (throws naming the index when the type differs).
    template <class M>
    std::shared_ptr<M> at(size_t i) const {
        auto m = std::dynamic_pointer_cast<M>((*this)[i]);
        CXR_CHECK(m != nullptr, "ModuleList: element ", i, " is a ", (*this)[i]->type_name(),
                  ", not the type asked for");
        return m;
    }
};

}  // namespace cxr::nn
