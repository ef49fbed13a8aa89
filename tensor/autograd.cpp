// The autograd engine: node recording, gradient accumulation, and a dependency-counted backward pass that uses
// explicit work lists instead of recursion (see autograd.h).
#include "tensor/autocast.h"
#include "tensor/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "tensor/error.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::tensor {

namespace {
thread_local bool g_grad_enabled = true;

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
    TensorImpl& impl = leaf.impl();
    if (auto existing = impl.grad_accumulator.lock()) return existing;
    auto node = std::make_shared<Node>();
    node->name = "AccumulateGrad";
    node->leaf = leaf.impl_ptr();
    impl.grad_accumulator = node;
    return node;
}

Tensor accumulate(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : g; }
}  // namespace

Node::~Node() {
    // Destroying a node releases its inputs' nodes; on a long chain that would recurse once per op. Instead
    // steal the edges of every node that is about to die and release them from a flat work list.
    backward = nullptr;
    std::vector<std::shared_ptr<Node>> stack;
    stack.swap(next);
    while (!stack.empty()) {
        std::shared_ptr<Node> n = std::move(stack.back());
        stack.pop_back();
        if (n && n.use_count() == 1) {
            n->backward = nullptr;  // drops saved tensors while n's own edges still hold their nodes
            for (auto& e : n->next) stack.push_back(std::move(e));
            n->next.clear();
        }
    }
}

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_grad(const std::vector<Tensor>& inputs) {
    if (!g_grad_enabled) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

Tensor record(const char* name, Tensor output, const std::vector<Tensor>& inputs, BackwardFn fn) {
    if (!needs_grad(inputs)) return output;
    auto node = std::make_shared<Node>();
    node->name = name;
    node->next.reserve(inputs.size());
    for (const Tensor& t : inputs) {
        if (!t.defined() || !t.requires_grad())
            node->next.push_back(nullptr);
        else if (t.grad_fn())
            node->next.push_back(t.grad_fn());
        else
            node->next.push_back(grad_accumulator(t));
    }
    node->backward = std::move(fn);
    node->output = output.impl_ptr();
    output.impl().grad_fn = node;
    output.impl().requires_grad = true;
    return output;
}

void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
    CXR_CHECK(root.requires_grad(), "backward: the tensor does not require grad and has no grad_fn");
    CXR_CHECK(grad_root.sizes() == root.sizes(), "backward: gradient shape ", shape_str(grad_root.sizes()),
              " does not match the tensor's shape ", shape_str(root.sizes()));
    NoGradGuard no_grad;
    AutocastGuard no_autocast(std::nullopt);  // gradients keep the dtypes the forward recorded (tensor/autocast.h)

    std::shared_ptr<Node> start = root.is_leaf() ? grad_accumulator(root) : root.grad_fn();

    // 1. Count, for every reachable node, how many edges point at it.
    std::unordered_map<Node*, int> deps;
    std::unordered_set<Node*> seen{start.get()};
    std::vector<Node*> stack{start.get()};
    while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        for (auto& e : n->next) {
            if (!e) continue;
            deps[e.get()] += 1;
            if (seen.insert(e.get()).second) stack.push_back(e.get());
        }
    }

    // 2. Run nodes whose every consumer has delivered its gradient.
    std::unordered_map<Node*, Tensor> grads;
    grads[start.get()] = grad_root;
    std::vector<std::shared_ptr<Node>> ready{start};
    while (!ready.empty()) {
        std::shared_ptr<Node> n = std::move(ready.back());
        ready.pop_back();
        Tensor g = std::move(grads[n.get()]);
        grads.erase(n.get());

        if (n->name == "AccumulateGrad") {
            auto leaf = n->leaf.lock();
            if (!leaf || !g.defined()) continue;  // the leaf no longer exists: nobody can read its gradient
            Tensor leaf_t(leaf);
            Tensor prev = leaf_t.grad();
            // A fresh buffer on first accumulation, so that .grad never aliases another tensor.
            leaf_t.set_grad(prev.defined() ? add(prev, g) : g.clone());
            continue;
        }
        std::vector<Tensor> in_grads(n->next.size());  // stays undefined when no gradient reached this node
        if (g.defined()) {
            if (auto out = n->output.lock())
                if (out->retains_grad) {
                    Tensor out_t(out);
                    Tensor prev = out_t.grad();
                    out_t.set_grad(prev.defined() ? add(prev, g) : g.clone());
                }
            CXR_CHECK(!n->freed, "backward through node '", n->name,
                      "' a second time: its saved tensors were freed; pass retain_graph=true to the first backward");
            in_grads = n->backward(g);
            CXR_CHECK(in_grads.size() == n->next.size(), "autograd node '", n->name, "' returned ",
                      in_grads.size(), " gradients for ", n->next.size(), " inputs");
            if (!retain_graph) {
                n->backward = nullptr;
                n->freed = true;
            }
        }
        for (size_t i = 0; i < n->next.size(); ++i) {
            Node* child = n->next[i].get();
            if (!child) continue;
            if (in_grads[i].defined()) grads[child] = accumulate(grads[child], in_grads[i]);
            if (--deps[child] == 0) ready.push_back(n->next[i]);
        }
    }
}

}  // namespace cxr::tensor
