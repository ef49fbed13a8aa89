// Basic layers (torch.nn names and state-dict keys): Linear, Embedding, Dropout, Identity, Flatten.
//   Linear(in, out, bias):  y = x Wᵀ + b,  W [out, in] ("weight"), b [out] ("bias");
//     init as torch.nn.Linear: W ~ U(−1/√in, 1/√in) (kaiming_uniform, a = √5), b ~ U(−1/√in, 1/√in).
//   Embedding(num, dim, padding_idx):  y = W[index],  W [num, dim] ("weight") ~ N(0, 1), row padding_idx zero
//     and receiving no gradient (torch.nn.Embedding).
//   Dropout(p):  inverted dropout in training mode (tensor/ops/dropout.h), identity in eval mode.
//   Identity:  y = x.     Flatten(start_dim = 1, end_dim = -1):  y = x.flatten(start_dim, end_dim).
#pragma once

#include <optional>

#include "nn/module.h"

namespace cxr::tensor {
class Generator;
}

namespace cxr::nn {

class Linear : public Module {
public:
    Linear(int64_t in_features, int64_t out_features, bool bias = true, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // x [..., in] -> [..., out]
    std::string extra_repr() const override;
    void reset_parameters(tensor::Generator* gen = nullptr);

    int64_t in_features, out_features;
    Tensor weight;  // [out, in]
    Tensor bias;    // [out] or undefined
};

class Embedding : public Module {
public:
    Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt,
              tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& index) override;  // index (i64/i32) any shape -> index.shape + [dim]
    std::string extra_repr() const override;
    void reset_parameters(tensor::Generator* gen = nullptr);

    int64_t num_embeddings, embedding_dim;
    std::optional<int64_t> padding_idx;  // normalised to [0, num_embeddings)
    Tensor weight;                       // [num_embeddings, embedding_dim]
};

class Dropout : public Module {
public:
    // gen: the generator of the masks (the default generator when null); not owned.
    explicit Dropout(double p = 0.5, tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

    double p;
    tensor::Generator* generator;
};

class Identity : public Module {
public:
    Identity() : Module("Identity") {}
    Tensor forward(const Tensor& x) override { return x; }
};

class Flatten : public Module {
public:
    explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);
    Tensor forward(const Tensor& x) override;
    std::string extra_repr() const override;

    int64_t start_dim, end_dim;
};

}  // namespace cxr::nn
