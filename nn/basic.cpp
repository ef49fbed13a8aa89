// Basic layers: Linear, Embedding, Dropout, Flatten (definitions and references in nn/basic.h).
#include "nn/basic.h"

#include <sstream>

#include "nn/init.h"
#include "tensor/autograd.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/dropout.h"
#include "tensor/ops/index.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/view.h"

namespace cxr::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, tensor::Generator* gen)
    : Module("Linear"), in_features(in), out_features(out) {
    CXR_CHECK(in >= 0 && out >= 0, "Linear: negative size (in ", in, ", out ", out, ")");
    weight = tensor::empty({out, in});
    if (with_bias) bias = tensor::empty({out});
    reset_parameters(gen);
    register_parameter("weight", weight);
    register_parameter("bias", bias);
}

void Linear::reset_parameters(tensor::Generator* gen) { init::default_weight_bias_init(weight, bias, gen); }

Tensor Linear::forward(const Tensor& x) {
    CXR_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "Linear(", in_features, ", ", out_features,
              "): input's last dim must be ", in_features, ", got shape ", tensor::shape_str(x.sizes()));
    return tensor::linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
    return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
           ", bias=" + (bias.defined() ? "True" : "False");
}

Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad, tensor::Generator* gen)
    : Module("Embedding"), num_embeddings(num), embedding_dim(dim) {
    CXR_CHECK(num > 0 && dim > 0, "Embedding: sizes must be positive (", num, ", ", dim, ")");
    if (pad) {
        CXR_CHECK(*pad < num && *pad >= -num, "Embedding: padding_idx ", *pad, " outside [", -num, ", ", num, ")");
        padding_idx = *pad < 0 ? *pad + num : *pad;
    }
    weight = tensor::empty({num, dim});
    reset_parameters(gen);
    register_parameter("weight", weight);
}

void Embedding::reset_parameters(tensor::Generator* gen) {
    init::normal_(weight, 0.0, 1.0, gen);
    if (padding_idx) {
        tensor::NoGradGuard ng;
        tensor::select(weight, 0, *padding_idx).fill_(0.0);
    }
}

Tensor Embedding::forward(const Tensor& index) { return tensor::embedding(index, weight, padding_idx); }

std::string Embedding::extra_repr() const {
    std::string s = std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim);
    if (padding_idx) s += ", padding_idx=" + std::to_string(*padding_idx);
    return s;
}

Dropout::Dropout(double p_, tensor::Generator* gen) : Module("Dropout"), p(p_), generator(gen) {
    CXR_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& x) { return tensor::dropout(x, p, is_training(), generator); }

std::string Dropout::extra_repr() const {
    std::ostringstream os;
    os << "p=" << p;
    return os.str();
}

Flatten::Flatten(int64_t s, int64_t e) : Module("Flatten"), start_dim(s), end_dim(e) {}

Tensor Flatten::forward(const Tensor& x) { return tensor::flatten(x, start_dim, end_dim); }

std::string Flatten::extra_repr() const {
    return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

}  // namespace cxr::nn
