// Inception-v3, FID variant (architecture, names and the pytorch-fid differences in vision/inception.h).
#include "vision/inception.h"

#include "tensor/ops/elementwise.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/resize.h"
#include "tensor/ops/view.h"

namespace cxr::vision {

namespace {
using BC = std::shared_ptr<BasicConv2d>;

BC basic(int64_t in, int64_t out, nn::Pair2 k, nn::Pair2 s, nn::Pair2 p, tensor::Generator* gen) {
    return std::make_shared<BasicConv2d>(in, out, k, s, p, gen);
}
// 3×3 average pool, stride 1, pad 1, padding excluded from the divisor (pytorch-fid's A/C/E blocks).
Tensor avg_pool_exclude_pad(const Tensor& x) { return tensor::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, false, false); }
}  // namespace

BasicConv2d::BasicConv2d(int64_t in, int64_t out, nn::Pair2 k, nn::Pair2 s, nn::Pair2 p, tensor::Generator* gen)
    : Module("BasicConv2d") {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(in, out, k, s, p, 1, 1, false, gen));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(out, 0.001));
}

Tensor BasicConv2d::forward(const Tensor& x) { return tensor::relu(bn->forward(conv->forward(x))); }

InceptionA::InceptionA(int64_t in, int64_t pf, tensor::Generator* g) : Module("FIDInceptionA") {
    branch1x1 = register_module("branch1x1", basic(in, 64, 1, 1, 0, g));
    branch5x5_1 = register_module("branch5x5_1", basic(in, 48, 1, 1, 0, g));
    branch5x5_2 = register_module("branch5x5_2", basic(48, 64, 5, 1, 2, g));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", basic(in, 64, 1, 1, 0, g));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", basic(64, 96, 3, 1, 1, g));
    branch3x3dbl_3 = register_module("branch3x3dbl_3", basic(96, 96, 3, 1, 1, g));
    branch_pool = register_module("branch_pool", basic(in, pf, 1, 1, 0, g));
}

Tensor InceptionA::forward(const Tensor& x) {
    Tensor b1 = branch1x1->forward(x);
    Tensor b5 = branch5x5_2->forward(branch5x5_1->forward(x));
    Tensor b3 = branch3x3dbl_3->forward(branch3x3dbl_2->forward(branch3x3dbl_1->forward(x)));
    Tensor bp = branch_pool->forward(avg_pool_exclude_pad(x));
    return tensor::cat({b1, b5, b3, bp}, 1);
}

InceptionB::InceptionB(int64_t in, tensor::Generator* g) : Module("InceptionB") {
    branch3x3 = register_module("branch3x3", basic(in, 384, 3, 2, 0, g));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", basic(in, 64, 1, 1, 0, g));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", basic(64, 96, 3, 1, 1, g));
    branch3x3dbl_3 = register_module("branch3x3dbl_3", basic(96, 96, 3, 2, 0, g));
}

Tensor InceptionB::forward(const Tensor& x) {
    Tensor b3 = branch3x3->forward(x);
    Tensor bd = branch3x3dbl_3->forward(branch3x3dbl_2->forward(branch3x3dbl_1->forward(x)));
    Tensor bp = tensor::max_pool2d(x, {3, 3}, {2, 2});
    return tensor::cat({b3, bd, bp}, 1);
}

InceptionC::InceptionC(int64_t in, int64_t c7, tensor::Generator* g) : Module("FIDInceptionC") {
    branch1x1 = register_module("branch1x1", basic(in, 192, 1, 1, 0, g));
    branch7x7_1 = register_module("branch7x7_1", basic(in, c7, 1, 1, 0, g));
    branch7x7_2 = register_module("branch7x7_2", basic(c7, c7, {1, 7}, 1, {0, 3}, g));
    branch7x7_3 = register_module("branch7x7_3", basic(c7, 192, {7, 1}, 1, {3, 0}, g));
    branch7x7dbl_1 = register_module("branch7x7dbl_1", basic(in, c7, 1, 1, 0, g));
    branch7x7dbl_2 = register_module("branch7x7dbl_2", basic(c7, c7, {7, 1}, 1, {3, 0}, g));
    branch7x7dbl_3 = register_module("branch7x7dbl_3", basic(c7, c7, {1, 7}, 1, {0, 3}, g));
    branch7x7dbl_4 = register_module("branch7x7dbl_4", basic(c7, c7, {7, 1}, 1, {3, 0}, g));
    branch7x7dbl_5 = register_module("branch7x7dbl_5", basic(c7, 192, {1, 7}, 1, {0, 3}, g));
    branch_pool = register_module("branch_pool", basic(in, 192, 1, 1, 0, g));
}

Tensor InceptionC::forward(const Tensor& x) {
    Tensor b1 = branch1x1->forward(x);
    Tensor b7 = branch7x7_3->forward(branch7x7_2->forward(branch7x7_1->forward(x)));
    Tensor bd = branch7x7dbl_1->forward(x);
    bd = branch7x7dbl_3->forward(branch7x7dbl_2->forward(bd));
    bd = branch7x7dbl_5->forward(branch7x7dbl_4->forward(bd));
    Tensor bp = branch_pool->forward(avg_pool_exclude_pad(x));
    return tensor::cat({b1, b7, bd, bp}, 1);
}

InceptionD::InceptionD(int64_t in, tensor::Generator* g) : Module("InceptionD") {
    branch3x3_1 = register_module("branch3x3_1", basic(in, 192, 1, 1, 0, g));
    branch3x3_2 = register_module("branch3x3_2", basic(192, 320, 3, 2, 0, g));
    branch7x7x3_1 = register_module("branch7x7x3_1", basic(in, 192, 1, 1, 0, g));
    branch7x7x3_2 = register_module("branch7x7x3_2", basic(192, 192, {1, 7}, 1, {0, 3}, g));
    branch7x7x3_3 = register_module("branch7x7x3_3", basic(192, 192, {7, 1}, 1, {3, 0}, g));
    branch7x7x3_4 = register_module("branch7x7x3_4", basic(192, 192, 3, 2, 0, g));
}

Tensor InceptionD::forward(const Tensor& x) {
    Tensor b3 = branch3x3_2->forward(branch3x3_1->forward(x));
    Tensor b7 = branch7x7x3_2->forward(branch7x7x3_1->forward(x));
    b7 = branch7x7x3_4->forward(branch7x7x3_3->forward(b7));
    Tensor bp = tensor::max_pool2d(x, {3, 3}, {2, 2});
    return tensor::cat({b3, b7, bp}, 1);
}

InceptionE::InceptionE(int64_t in, Pool pool_, tensor::Generator* g)
    : Module(pool_ == Pool::max ? "FIDInceptionE_2" : "FIDInceptionE_1"), pool(pool_) {
    branch1x1 = register_module("branch1x1", basic(in, 320, 1, 1, 0, g));
    branch3x3_1 = register_module("branch3x3_1", basic(in, 384, 1, 1, 0, g));
    branch3x3_2a = register_module("branch3x3_2a", basic(384, 384, {1, 3}, 1, {0, 1}, g));
    branch3x3_2b = register_module("branch3x3_2b", basic(384, 384, {3, 1}, 1, {1, 0}, g));
    branch3x3dbl_1 = register_module("branch3x3dbl_1", basic(in, 448, 1, 1, 0, g));
    branch3x3dbl_2 = register_module("branch3x3dbl_2", basic(448, 384, 3, 1, 1, g));
    branch3x3dbl_3a = register_module("branch3x3dbl_3a", basic(384, 384, {1, 3}, 1, {0, 1}, g));
    branch3x3dbl_3b = register_module("branch3x3dbl_3b", basic(384, 384, {3, 1}, 1, {1, 0}, g));
    branch_pool = register_module("branch_pool", basic(in, 192, 1, 1, 0, g));
}

Tensor InceptionE::forward(const Tensor& x) {
    Tensor b1 = branch1x1->forward(x);
    Tensor b3 = branch3x3_1->forward(x);
    b3 = tensor::cat({branch3x3_2a->forward(b3), branch3x3_2b->forward(b3)}, 1);
    Tensor bd = branch3x3dbl_2->forward(branch3x3dbl_1->forward(x));
    bd = tensor::cat({branch3x3dbl_3a->forward(bd), branch3x3dbl_3b->forward(bd)}, 1);
    Tensor pooled = pool == Pool::max ? tensor::max_pool2d(x, {3, 3}, {1, 1}, {1, 1}) : avg_pool_exclude_pad(x);
    Tensor bp = branch_pool->forward(pooled);
    return tensor::cat({b1, b3, bd, bp}, 1);
}

InceptionV3FID::InceptionV3FID(const HeadConfig& head, tensor::Generator* g) : ImageClassifier("Inception3", "fc") {
    Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", basic(3, 32, 3, 2, 0, g));
    Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", basic(32, 32, 3, 1, 0, g));
    Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", basic(32, 64, 3, 1, 1, g));
    maxpool1 = register_module("maxpool1", std::make_shared<nn::MaxPool2d>(3, 2));
    Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", basic(64, 80, 1, 1, 0, g));
    Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", basic(80, 192, 3, 1, 0, g));
    maxpool2 = register_module("maxpool2", std::make_shared<nn::MaxPool2d>(3, 2));
    Mixed_5b = register_module("Mixed_5b", std::make_shared<InceptionA>(192, 32, g));
    Mixed_5c = register_module("Mixed_5c", std::make_shared<InceptionA>(256, 64, g));
    Mixed_5d = register_module("Mixed_5d", std::make_shared<InceptionA>(288, 64, g));
    Mixed_6a = register_module("Mixed_6a", std::make_shared<InceptionB>(288, g));
    Mixed_6b = register_module("Mixed_6b", std::make_shared<InceptionC>(768, 128, g));
    Mixed_6c = register_module("Mixed_6c", std::make_shared<InceptionC>(768, 160, g));
    Mixed_6d = register_module("Mixed_6d", std::make_shared<InceptionC>(768, 160, g));
    Mixed_6e = register_module("Mixed_6e", std::make_shared<InceptionC>(768, 192, g));
    Mixed_7a = register_module("Mixed_7a", std::make_shared<InceptionD>(768, g));
    Mixed_7b = register_module("Mixed_7b", std::make_shared<InceptionE>(1280, InceptionE::Pool::avg_exclude_pad, g));
    Mixed_7c = register_module("Mixed_7c", std::make_shared<InceptionE>(2048, InceptionE::Pool::max, g));
    avgpool = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(0.5, nullptr));  // masks: default generator (g only initialises)
    init_head(2048, head, g);
}

Tensor InceptionV3FID::forward_features(const Tensor& x) {
    CXR_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) >= 75 && x.size(3) >= 75,
              "InceptionV3FID: expected input [N, 3, H, W] with H, W >= 75, got ", tensor::shape_str(x.sizes()));
    Tensor h = Conv2d_2b_3x3->forward(Conv2d_2a_3x3->forward(Conv2d_1a_3x3->forward(x)));
    h = maxpool1->forward(h);                                   // [N, 64, 73, 73] at 299
    h = maxpool2->forward(Conv2d_4a_3x3->forward(Conv2d_3b_1x1->forward(h)));  // [N, 192, 35, 35]
    h = Mixed_5d->forward(Mixed_5c->forward(Mixed_5b->forward(h)));          // [N, 288, 35, 35]
    h = Mixed_6a->forward(h);                                                // [N, 768, 17, 17]
    h = Mixed_6e->forward(Mixed_6d->forward(Mixed_6c->forward(Mixed_6b->forward(h))));
    h = Mixed_7c->forward(Mixed_7b->forward(Mixed_7a->forward(h)));          // [N, 2048, 8, 8]
    return avgpool->forward(h).flatten(1);                                   // [N, 2048]
}

Tensor InceptionV3FID::forward_head(const Tensor& features) {
    return ImageClassifier::forward_head(dropout->forward(features));
}

Tensor InceptionV3FID::fid_features(const Tensor& images, bool resize_input, bool normalize_input,
                                    int64_t resize_to) {
    CXR_CHECK(images.dim() == 4 && images.size(1) == 3, "InceptionV3FID::fid_features: expected [N, 3, H, W], got ",
              tensor::shape_str(images.sizes()));
    Tensor x = images;
    if (resize_input) x = tensor::upsample_bilinear2d(x, tensor::Size2{resize_to, resize_to}, false);
    if (normalize_input) x = tensor::sub(tensor::mul(x, 2.0), 1.0);
    return forward_features(x);
}

std::shared_ptr<InceptionV3FID> inception_v3_fid(const HeadConfig& head, tensor::Generator* gen) {
    return std::make_shared<InceptionV3FID>(head, gen);
}

}  // namespace cxr::vision
