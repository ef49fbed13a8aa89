// Define-by-run reverse-mode autograd (DESIGN.md §3).
//
// Every differentiable op that runs while grad mode is on and has an input that requires grad records one
// Node: a readable name ("mul", "conv2d", ...), edges to the nodes of its inputs, and a backward closure
// written next to the forward that maps dL/d(output) to dL/d(input_i). Leaves get an "AccumulateGrad" node
// that adds into tensor.grad. Tensor::backward() runs the nodes in dependency order with an explicit work list
// (no recursion, so a 10,000-op chain cannot overflow the stack), sums gradients that meet at a node, and frees
// each closure (and its saved tensors) once it has run unless retain_graph is set. Backward closures run in
// no-grad mode: higher-order gradients are not supported.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace cxr::tensor {

// Maps the gradient of the op's output to one gradient per input (an undefined Tensor where none flows).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
    std::string name;
    std::vector<std::shared_ptr<Node>> next;  // one per input; null where the input needs no gradient
    BackwardFn backward;                      // empty once run (graph freed) or for AccumulateGrad
    std::weak_ptr<TensorImpl> output;         // the tensor this node made (for retain_grad)
    std::weak_ptr<TensorImpl> leaf;           // AccumulateGrad nodes: the leaf that receives the gradient
    bool freed = false;
    ~Node();                                  // iterative teardown of long chains
};

// Grad mode (thread-local, on by default).
bool grad_enabled();
void set_grad_enabled(bool on);

// RAII scope that turns gradient recording off, like torch.no_grad().
class NoGradGuard {
public:
    NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
    ~NoGradGuard() { set_grad_enabled(prev_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool prev_;
};

// True when an op on these inputs must record a node.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records the node for `output` = op(inputs) when needs_grad(inputs); returns output (marked requires_grad).
// `fn` must return one entry per input, each of the input's shape (or undefined).
Tensor record(const char* name, Tensor output, const std::vector<Tensor>& inputs, BackwardFn fn);

// Runs backward from `root` with initial gradient `grad_root` (same shape).
void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph);

}  // namespace cxr::tensor
