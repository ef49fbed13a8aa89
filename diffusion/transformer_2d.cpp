// The spatial transformer of the Stable Diffusion UNet: GEGLU, FeedForward, BasicTransformerBlock and the
// continuous-input Transformer2DModel (formulas, keys and references in diffusion/transformer_2d.h).
#include "diffusion/transformer_2d.h"

#include "tensor/ops/elementwise.h"
#include "tensor/ops/view.h"

namespace cxr::diffusion {

namespace ts = cxr::tensor;

// ---------------------------------------------------------------------------------------------------------------
GEGLU::GEGLU(int64_t in, int64_t out, tensor::Generator* gen) : Module("GEGLU"), dim_in(in), dim_out(out) {
    CXR_CHECK(in > 0 && out > 0, "GEGLU: dimensions must be positive (got ", in, " -> ", out, ")");
    proj = register_module("proj", std::make_shared<nn::Linear>(in, 2 * out, true, gen));
}

Tensor GEGLU::forward(const Tensor& x) {
    Tensor hg = proj->forward(x);               // [..., 2·dim_out]
    std::vector<Tensor> parts = ts::chunk(hg, 2, -1);
    return ts::mul(parts[0], ts::gelu(parts[1]));  // h · gelu(g)   [..., dim_out]
}

FeedForward::FeedForward(int64_t d, int64_t mult, double dropout, tensor::Generator* gen)
    : Module("FeedForward"), dim(d), inner_dim(d * mult) {
    CXR_CHECK(d > 0 && mult > 0, "FeedForward: dim and mult must be positive (got ", d, ", ", mult, ")");
    net = register_module("net", std::make_shared<nn::ModuleList>());
    net->push_back(std::make_shared<GEGLU>(dim, inner_dim, gen));
    net->push_back(std::make_shared<nn::Dropout>(dropout));
    net->push_back(std::make_shared<nn::Linear>(inner_dim, dim, true, gen));
}

Tensor FeedForward::forward(const Tensor& x) {
    Tensor h = x;
    for (size_t i = 0; i < net->size(); ++i) h = (*net)[i]->forward(h);
    return h;
}

// ---------------------------------------------------------------------------------------------------------------
BasicTransformerBlock::BasicTransformerBlock(int64_t d, int64_t heads, int64_t dim_head, const Options& o,
                                             tensor::Generator* gen)
    : Module("BasicTransformerBlock"), dim(d), options(o) {
    CXR_CHECK(!o.only_cross_attention || o.cross_attention_dim > 0,
              "BasicTransformerBlock: only_cross_attention needs a cross_attention_dim");
    Attention::Options a;
    a.heads = heads;
    a.dim_head = dim_head;
    a.bias = false;
    a.out_bias = true;
    a.dropout = o.dropout;
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(tensor::Shape{d}, o.norm_eps, true));
    a.cross_attention_dim = o.only_cross_attention ? o.cross_attention_dim : 0;
    attn1 = register_module("attn1", std::make_shared<Attention>(d, a, gen));
    if (o.cross_attention_dim > 0) {
        norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(tensor::Shape{d}, o.norm_eps, true));
        a.cross_attention_dim = o.cross_attention_dim;
        attn2 = register_module("attn2", std::make_shared<Attention>(d, a, gen));
    }
    norm3 = register_module("norm3", std::make_shared<nn::LayerNorm>(tensor::Shape{d}, o.norm_eps, true));
    ff = register_module("ff", std::make_shared<FeedForward>(d, 4, o.dropout, gen));
}

Tensor BasicTransformerBlock::forward(const Tensor& x, const Tensor& context) {
    CXR_CHECK(x.dim() == 3 && x.size(2) == dim, "BasicTransformerBlock: expected tokens [B, L, ", dim, "], got ",
              ts::shape_str(x.shape()));
    if (attn2 || options.only_cross_attention)
        CXR_CHECK(context.defined(), "BasicTransformerBlock: this block attends to a context [B, S, ",
                  options.cross_attention_dim, "] and none was given");
    Tensor h = ts::add(x, attn1->forward(norm1->forward(x), options.only_cross_attention ? context : Tensor()));
    if (attn2) h = ts::add(h, attn2->forward(norm2->forward(h), context));
    return ts::add(h, ff->forward(norm3->forward(h)));  // [B, L, dim]
}

// ---------------------------------------------------------------------------------------------------------------
Transformer2DModel::Transformer2DModel(int64_t n_heads, int64_t head_dim, int64_t in, const Options& o,
                                       tensor::Generator* gen)
    : Module("Transformer2DModel"), heads(n_heads), dim_head(head_dim), in_channels(in),
      inner_dim(n_heads * head_dim), options(o) {
    CXR_CHECK(n_heads > 0 && head_dim > 0 && in > 0, "Transformer2DModel: heads (", n_heads, "), dim_head (",
              head_dim, ") and in_channels (", in, ") must be positive");
    CXR_CHECK(o.num_layers > 0, "Transformer2DModel: num_layers must be positive, got ", o.num_layers);
    CXR_CHECK(o.norm_num_groups > 0 && in % o.norm_num_groups == 0, "Transformer2DModel: ", in,
              " channels are not divisible into ", o.norm_num_groups, " groups");
    norm = register_module("norm", std::make_shared<nn::GroupNorm>(o.norm_num_groups, in, 1e-6, true));
    if (o.use_linear_projection)
        proj_in = register_module("proj_in", std::make_shared<nn::Linear>(in, inner_dim, true, gen));
    else
        proj_in = register_module("proj_in", std::make_shared<nn::Conv2d>(in, inner_dim, 1, 1, 0, 1, 1, true, gen));
    transformer_blocks = register_module("transformer_blocks", std::make_shared<nn::ModuleList>());
    BasicTransformerBlock::Options b;
    b.cross_attention_dim = o.cross_attention_dim;
    b.only_cross_attention = o.only_cross_attention;
    b.dropout = o.dropout;
    for (int64_t i = 0; i < o.num_layers; ++i)
        transformer_blocks->push_back(std::make_shared<BasicTransformerBlock>(inner_dim, heads, dim_head, b, gen));
    if (o.use_linear_projection)
        proj_out = register_module("proj_out", std::make_shared<nn::Linear>(inner_dim, in, true, gen));
    else
        proj_out = register_module("proj_out", std::make_shared<nn::Conv2d>(inner_dim, in, 1, 1, 0, 1, 1, true, gen));
}

Tensor Transformer2DModel::forward(const Tensor& x, const Tensor& context) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == in_channels, "Transformer2DModel: expected [B, ", in_channels,
              ", H, W], got ", ts::shape_str(x.shape()));
    const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
    // [B, C', H, W] -> [B, H·W, C'] (channels last, tokens in row-major pixel order)
    auto to_tokens = [&](const Tensor& t) { return ts::reshape(ts::permute(t, {0, 2, 3, 1}), {B, H * W, t.size(1)}); };
    // [B, H·W, C'] -> [B, C', H, W]
    auto to_map = [&](const Tensor& t) { return ts::permute(ts::reshape(t, {B, H, W, t.size(2)}), {0, 3, 1, 2}); };

    Tensor h = norm->forward(x);  // [B, C, H, W]
    if (options.use_linear_projection)
        h = proj_in->forward(to_tokens(h));   // [B, L, inner]
    else
        h = to_tokens(proj_in->forward(h));   // [B, inner, H, W] -> [B, L, inner]
    for (size_t i = 0; i < transformer_blocks->size(); ++i)
        h = transformer_blocks->at<BasicTransformerBlock>(i)->forward(h, context);
    if (options.use_linear_projection)
        h = to_map(proj_out->forward(h));     // [B, L, C] -> [B, C, H, W]
    else
        h = proj_out->forward(ts::contiguous(to_map(h)));  // [B, inner, H, W] -> [B, C, H, W]
    return ts::add(h, x);
}

}  // namespace cxr::diffusion
