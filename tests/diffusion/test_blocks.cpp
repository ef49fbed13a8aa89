// diffusion/blocks.h against diffusers' own blocks (tests/fixtures/diffusion_blocks.*, made by
// tests/fixtures/tools/make_diffusion_blocks_fixtures.py): each block gets diffusers' random parameters by
// state-dict key (a strict load, so the key sets agree too), runs in float64 like the reference, and its output and
// the gradients of sum(out · w) for the input and every parameter are compared by name. A float32 run of the same
// blocks checks the everyday precision, and the legacy attention keys and the errors are tested by hand.
#include "tests/support/testing.h"

#include <cmath>

#include "diffusion/blocks.h"
#include "tensor/autograd.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

using namespace cxr::diffusion;
using cxr::testing::Fixtures;
using cxr::tensor::DType;
namespace T = cxr::tensor;

namespace {

// The block's parameters from the fixture ("<case>.param.<key>"), loaded strictly.
void load_case_params(Fixtures& fx, const std::string& c, Module& m) {
    cxr::nn::StateDict sd;
    const std::string prefix = c + ".param.";
    for (const auto& name : fx.names_with_prefix(prefix)) sd[name.substr(prefix.size())] = fx.get(name);
    const auto report = m.load_state_dict(sd);
    INFO(report.str());
    REQUIRE(report.ok());
}

// Runs `call` on the fixture inputs (names in `inputs`, "x" first) in f64, checks the output and every gradient.
void check_block(const std::string& c, Module& m, const std::vector<std::string>& inputs,
                 const std::function<T::Tensor(const std::vector<T::Tensor>&)>& call) {
    Fixtures fx("diffusion_blocks");
    m.to(DType::f64);
    load_case_params(fx, c, m);
    std::vector<T::Tensor> xs;
    for (const auto& name : inputs) { T::Tensor t = fx.get(c + "." + name).detach(); t.set_requires_grad(true); xs.push_back(t); }
    const T::Tensor out = call(xs);
    {
        INFO(c << ".out");
        CXR_EXPECT_CLOSE(out, fx.get(c + ".out"), 1e-10, 1e-9);
    }
    T::sum(T::mul(out, fx.get(c + ".w"))).backward();
    {
        INFO(c << ".grad_x");
        REQUIRE(xs[0].grad().defined());
        CXR_EXPECT_CLOSE(xs[0].grad(), fx.get(c + ".grad_x"), 1e-10, 1e-9);
    }
    size_t n = 0;
    for (const auto& [key, p] : m.named_parameters()) {
        INFO(c << ".grad." << key);
        REQUIRE(p.grad().defined());
        CXR_EXPECT_CLOSE(p.grad(), fx.get(c + ".grad." + key), 1e-10, 1e-9);
        ++n;
    }
    CHECK(n == fx.names_with_prefix(c + ".grad.").size());

    // The same block in float32 (inputs rounded): within float32 accumulation error of the float64 reference.
    m.to(DType::f32);
    m.zero_grad();
    std::vector<T::Tensor> xs32;
    for (const auto& x : xs) xs32.push_back(T::cast(x.detach(), DType::f32));
    T::NoGradGuard ng;
    INFO(c << ".out in f32");
    CXR_EXPECT_CLOSE(call(xs32), fx.get(c + ".out"), 2e-5, 2e-5);
}

}  // namespace

TEST_CASE("ResnetBlock2D matches diffusers (with and without a time embedding)", "[cpu][diffusion][blocks]") {
    ResnetBlock2D::Options o;
    o.temb_channels = 10;
    o.groups = 4;
    ResnetBlock2D with_temb(8, 12, o);
    CHECK(with_temb.conv_shortcut != nullptr);
    check_block("resnet_temb", with_temb, {"x", "temb"},
                [&](const std::vector<T::Tensor>& in) { return with_temb.forward(in[0], in[1]); });

    ResnetBlock2D::Options p;
    p.temb_channels = 0;
    p.groups = 2;
    p.output_scale_factor = 2.0;
    ResnetBlock2D plain(8, 8, p);
    CHECK(plain.conv_shortcut == nullptr);
    CHECK(plain.time_emb_proj == nullptr);
    check_block("resnet_plain", plain, {"x"}, [&](const std::vector<T::Tensor>& in) { return plain.forward(in[0]); });
}

TEST_CASE("Attention matches diffusers: the VAE form, cross-attention and self-attention", "[cpu][diffusion][blocks]") {
    Attention::Options vae;
    vae.heads = 1;
    vae.dim_head = 8;
    vae.norm_num_groups = 4;
    vae.eps = 1e-6;
    vae.residual_connection = true;
    vae.bias = true;
    Attention a_vae(8, vae);
    check_block("attn_vae", a_vae, {"x"}, [&](const std::vector<T::Tensor>& in) { return a_vae.forward(in[0]); });

    Attention::Options cross;
    cross.cross_attention_dim = 12;
    cross.heads = 4;
    cross.dim_head = 6;
    Attention a_cross(16, cross);
    check_block("attn_cross", a_cross, {"x", "ctx"},
                [&](const std::vector<T::Tensor>& in) { return a_cross.forward(in[0], in[1]); });

    Attention::Options self;
    self.heads = 2;
    self.dim_head = 8;
    Attention a_self(16, self);
    check_block("attn_self", a_self, {"x"}, [&](const std::vector<T::Tensor>& in) { return a_self.forward(in[0]); });
}

TEST_CASE("Downsample2D and Upsample2D match diffusers", "[cpu][diffusion][blocks]") {
    Downsample2D d1(8, true, 6, 1);
    check_block("down_pad1", d1, {"x"}, [&](const std::vector<T::Tensor>& in) { return d1.forward(in[0]); });
    Downsample2D d0(8, true, 8, 0);
    check_block("down_pad0", d0, {"x"}, [&](const std::vector<T::Tensor>& in) { return d0.forward(in[0]); });
    Upsample2D u(8, true, 6);
    check_block("up_conv", u, {"x"}, [&](const std::vector<T::Tensor>& in) { return u.forward(in[0]); });
    Upsample2D us(8, true);
    check_block("up_size", us, {"x"},
                [&](const std::vector<T::Tensor>& in) { return us.forward(in[0], T::Size2{7, 9}); });

    Fixtures fx("diffusion_blocks");
    Downsample2D pool(8, false);
    CHECK(pool.named_parameters().empty());
    CXR_EXPECT_CLOSE(pool.forward(fx.get("down_pool.x")), fx.get("down_pool.out"), 1e-12, 1e-12);
}

TEST_CASE("Timestep embeddings match diffusers' get_timestep_embedding and TimestepEmbedding",
          "[cpu][diffusion][blocks]") {
    Fixtures fx("diffusion_blocks");
    const T::Tensor t = fx.get("timesteps.t");  // i64 [0, 1, 10, 250, 999]
    // float32 as diffusers: the frequencies agree bit for bit, so only sin/cos rounding of arguments up to ~1000
    // separates the two (a few ulp of the argument: ≤ 2e-6 absolute).
    CXR_EXPECT_CLOSE(Timesteps(32, true, 0).forward(t), fx.get("timesteps.sd"), 2e-6, 0);
    CXR_EXPECT_CLOSE(Timesteps(7, false, 1).forward(t), fx.get("timesteps.odd"), 2e-6, 0);
    CXR_EXPECT_CLOSE(Timesteps(16, true, 0).forward(fx.get("timesteps.tf")), fx.get("timesteps.fractional"), 2e-6, 0);
    CHECK(Timesteps(7, false, 1).forward(t).size(1) == 7);

    TimestepEmbedding mlp(8, 16);
    check_block("time_mlp", mlp, {"x"}, [&](const std::vector<T::Tensor>& in) { return mlp.forward(in[0]); });

    CHECK_THROWS_WITH(timestep_embedding(T::zeros({2, 1}), 8, true, 0), Catch::Contains("one-dimensional"));
}

TEST_CASE("Legacy VAE attention keys are renamed as diffusers does on load", "[cpu][diffusion][blocks]") {
    cxr::nn::StateDict sd;
    sd["encoder.mid_block.attentions.0.query.weight"] = T::zeros({4, 4});
    sd["encoder.mid_block.attentions.0.query.bias"] = T::zeros({4});
    sd["encoder.mid_block.attentions.0.proj_attn.weight"] = T::zeros({4, 4});
    sd["encoder.mid_block.attentions.0.group_norm.weight"] = T::zeros({4});
    sd["decoder.mid_block.attentions.0.value.bias"] = T::zeros({4});
    sd["decoder.up_blocks.0.resnets.0.conv1.weight"] = T::zeros({4, 4, 3, 3});
    sd["decoder.some.key.weight"] = T::zeros({4});  // "key" outside an attention module stays
    CHECK(rename_legacy_attention_keys(sd) == 4);
    CHECK(sd.count("encoder.mid_block.attentions.0.to_q.weight") == 1);
    CHECK(sd.count("encoder.mid_block.attentions.0.to_q.bias") == 1);
    CHECK(sd.count("encoder.mid_block.attentions.0.to_out.0.weight") == 1);
    CHECK(sd.count("decoder.mid_block.attentions.0.to_v.bias") == 1);
    CHECK(sd.count("encoder.mid_block.attentions.0.group_norm.weight") == 1);
    CHECK(sd.count("decoder.some.key.weight") == 1);
    CHECK(sd.size() == 7);
    CHECK(rename_legacy_attention_keys(sd) == 0);  // idempotent

    // Loading the renamed VAE-style attention into the block works strictly.
    Attention::Options o;
    o.heads = 1;
    o.dim_head = 4;
    o.norm_num_groups = 2;
    o.bias = true;
    o.residual_connection = true;
    Attention a(4, o);
    cxr::nn::StateDict legacy;
    for (const auto& [k, v] : a.state_dict()) {
        std::string old = k;
        for (auto [from, to] : std::vector<std::pair<std::string, std::string>>{
                     {"to_q.", "query."}, {"to_k.", "key."}, {"to_v.", "value."}, {"to_out.0.", "proj_attn."}})
            if (old.rfind(from, 0) == 0) old = to + old.substr(from.size());
        legacy["mid_block.attentions.0." + old] = v;
    }
    CHECK(rename_legacy_attention_keys(legacy) == 8);
    cxr::nn::StateDict inner;
    for (const auto& [k, v] : legacy) inner[k.substr(std::string("mid_block.attentions.0.").size())] = v;
    CHECK(a.load_state_dict(inner).ok());
}

TEST_CASE("Blocks reject wrong shapes and impossible settings, naming what is wrong", "[cpu][diffusion][blocks]") {
    ResnetBlock2D::Options o;
    o.temb_channels = 0;
    o.groups = 4;
    CHECK_THROWS_WITH(ResnetBlock2D(6, 8, o), Catch::Contains("6 input channels"));
    ResnetBlock2D r(8, 8, o);
    CHECK_THROWS_WITH(r.forward(T::zeros({1, 4, 3, 3})), Catch::Contains("expected [N, 8, H, W]"));
    CHECK_THROWS_WITH(r.forward(T::zeros({1, 8, 3, 3}), T::zeros({1, 5})), Catch::Contains("without one"));

    Attention::Options a;
    a.cross_attention_dim = 12;
    a.heads = 2;
    a.dim_head = 4;
    Attention att(16, a);
    CHECK_THROWS_WITH(att.forward(T::zeros({2, 3, 15})), Catch::Contains("[B, L, 16]"));
    CHECK_THROWS_WITH(att.forward(T::zeros({2, 3, 16}), T::zeros({2, 5, 16})), Catch::Contains("context must be [2, S, 12]"));
    CHECK_THROWS_WITH(Downsample2D(8, false, 4), Catch::Contains("average pooling"));
    CHECK_THROWS_WITH(Upsample2D(8, true).forward(T::zeros({1, 3, 2, 2})), Catch::Contains("expected [N, 8, H, W]"));
}
