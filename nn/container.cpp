// Sequential and ModuleList (semantics in nn/container.h, after torch.nn).
#include "nn/container.h"

namespace cxr::nn {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
    for (auto& m : modules) push_back(std::move(m));
}

Sequential::Sequential(std::vector<std::pair<std::string, std::shared_ptr<Module>>> named) : Module("Sequential") {
    for (auto& [name, m] : named) add(name, std::move(m));
}

std::shared_ptr<Module> Sequential::operator[](size_t i) const {
    CXR_CHECK(i < size(), "Sequential: index ", i, " out of range (size ", size(), ")");
    return named_children()[i].second;
}

Tensor Sequential::forward(const Tensor& x) {
    Tensor h = x;
    for (const auto& c : named_children()) h = c.second->forward(h);
    return h;
}

ModuleList::ModuleList(std::vector<std::shared_ptr<Module>> modules) : Module("ModuleList") {
    for (auto& m : modules) push_back(std::move(m));
}

std::shared_ptr<Module> ModuleList::operator[](size_t i) const {
    CXR_CHECK(i < size(), "ModuleList: index ", i, " out of range (size ", size(), ")");
    return named_children()[i].second;
}

}  // namespace cxr::nn
