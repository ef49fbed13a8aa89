// Inception-v3 in the FID variant (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
// CVPR 2016; the FID network of Heusel et al. 2017 as ported by pytorch-fid, mseitzer/pytorch-fid), with the
// module names of pytorch-fid's fid_inception_v3() — torchvision's Inception3 (num_classes 1008, no aux head)
// whose Mixed blocks are the FID ones — so the converted FID weights (pt_inception-2015-12-05) load strictly:
//   Conv2d_1a_3x3 (3→32, s2), Conv2d_2a_3x3 (32→32), Conv2d_2b_3x3 (32→64, pad 1), maxpool1 (3, s2),
//   Conv2d_3b_1x1 (64→80), Conv2d_4a_3x3 (80→192), maxpool2 (3, s2),
//   Mixed_5b/5c/5d = A(192, 32), A(256, 64), A(288, 64);  Mixed_6a = B(288);
//   Mixed_6b..6e = C(768, c7 = 128, 160, 160, 192);        Mixed_7a = D(768);
//   Mixed_7b = E(1280, avg pool branch), Mixed_7c = E(2048, max pool branch);  avgpool (1×1), dropout, fc (2048→1008).
// Every convolution is BasicConv2d: "conv" (no bias) → "bn" (BatchNorm, eps 0.001) → ReLU.
// Blocks (outputs concatenated on channels in the order listed):
//   A(in, pf):  branch1x1 (1×1, 64); branch5x5_1 (1×1, 48) → branch5x5_2 (5×5 pad 2, 64);
//               branch3x3dbl_1 (1×1, 64) → _2 (3×3 pad 1, 96) → _3 (3×3 pad 1, 96);
//               avg_pool(3, s1, pad 1, count_include_pad = False) → branch_pool (1×1, pf)
//   B(in):      branch3x3 (3×3 s2, 384); branch3x3dbl_1 (1×1, 64) → _2 (3×3 pad 1, 96) → _3 (3×3 s2, 96);
//               max_pool(3, s2)
//   C(in, c7):  branch1x1 (1×1, 192); branch7x7_1 (1×1, c7) → _2 (1×7, c7) → _3 (7×1, 192);
//               branch7x7dbl_1 (1×1, c7) → _2 (7×1) → _3 (1×7) → _4 (7×1) → _5 (1×7, 192);
//               avg_pool(3, s1, pad 1, count_include_pad = False) → branch_pool (1×1, 192)
//   D(in):      branch3x3_1 (1×1, 192) → branch3x3_2 (3×3 s2, 320);
//               branch7x7x3_1 (1×1, 192) → _2 (1×7) → _3 (7×1) → _4 (3×3 s2, 192);  max_pool(3, s2)
//   E(in):      branch1x1 (1×1, 320); branch3x3_1 (1×1, 384) → [branch3x3_2a (1×3), branch3x3_2b (3×1)];
//               branch3x3dbl_1 (1×1, 448) → _2 (3×3 pad 1, 384) → [_3a (1×3), _3b (3×1)];
//               pool → branch_pool (1×1, 192), the pool being avg_pool(3, s1, pad 1, count_include_pad = False)
//               in Mixed_7b and max_pool(3, s1, pad 1) in Mixed_7c (the two FID-specific E blocks).
// (1×n convs pad (0, n/2), n×1 convs pad (n/2, 0).) What differs from torchvision's Inception3 is exactly the
// count_include_pad = False of the A/C/E average pools and the max pool of the last E block (TensorFlow's graph).
// forward_features is the 2048-d average-pool output (pytorch-fid's block 3). fid_features additionally
// resizes the input bilinearly to 299×299 (align_corners = False) and maps [0, 1] to [−1, 1] (2x − 1), as
// pytorch-fid's InceptionV3 wrapper with resize_input and normalize_input. Minimum input 75×75 (without resize).
// Initialisation: torch's layer defaults (pytorch-fid builds the net with init_weights = False and then loads
// the FID weights, which is what this model is for).
#pragma once

#include <memory>

#include "nn/layers.h"
#include "vision/heads.h"

namespace cxr::vision {

class BasicConv2d : public Module {
public:
    BasicConv2d(int64_t in, int64_t out, nn::Pair2 kernel, nn::Pair2 stride = 1, nn::Pair2 padding = 0,
                tensor::Generator* gen = nullptr);
    Tensor forward(const Tensor& x) override;  // relu(bn(conv(x)))
    std::shared_ptr<nn::Conv2d> conv;
    std::shared_ptr<nn::BatchNorm2d> bn;
};

class InceptionA : public Module {
public:
    InceptionA(int64_t in, int64_t pool_features, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, 224 + pool_features, H, W]
    std::shared_ptr<BasicConv2d> branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2,
        branch3x3dbl_3, branch_pool;
};

class InceptionB : public Module {
public:
    InceptionB(int64_t in, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, 480 + in, (H−3)/2+1, (W−3)/2+1]
    std::shared_ptr<BasicConv2d> branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3;
};

class InceptionC : public Module {
public:
    InceptionC(int64_t in, int64_t channels_7x7, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, 768, H, W]
    std::shared_ptr<BasicConv2d> branch1x1, branch7x7_1, branch7x7_2, branch7x7_3, branch7x7dbl_1, branch7x7dbl_2,
        branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5, branch_pool;
};

class InceptionD : public Module {
public:
    InceptionD(int64_t in, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, 512 + in, (H−3)/2+1, (W−3)/2+1]
    std::shared_ptr<BasicConv2d> branch3x3_1, branch3x3_2, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3,
        branch7x7x3_4;
};

class InceptionE : public Module {
public:
    enum class Pool { avg_exclude_pad, max };
    InceptionE(int64_t in, Pool pool, tensor::Generator* gen);
    Tensor forward(const Tensor& x) override;  // [N, in, H, W] -> [N, 2048, H, W]
    Pool pool;
    std::shared_ptr<BasicConv2d> branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b, branch3x3dbl_1, branch3x3dbl_2,
        branch3x3dbl_3a, branch3x3dbl_3b, branch_pool;
};

class InceptionV3FID : public ImageClassifier {
public:
    // The head defaults to the FID network's fc (2048 → 1008), needed only to load its weights strictly.
    explicit InceptionV3FID(const HeadConfig& head = HeadConfig::linear(1008), tensor::Generator* gen = nullptr);
    // x [N, 3, H, W] (already in [−1, 1], H, W >= 75) -> [N, 2048]
    Tensor forward_features(const Tensor& x) override;
    // features [N, 2048] -> dropout (p 0.5, training only) -> head
    Tensor forward_head(const Tensor& features) override;
    // images [N, 3, H, W] in [0, 1] -> [N, 2048], as pytorch-fid: resize to resize_to×resize_to (bilinear,
    // align_corners false) when resize_input, then 2x − 1 when normalize_input.
    Tensor fid_features(const Tensor& images, bool resize_input = true, bool normalize_input = true,
                        int64_t resize_to = 299);

    std::shared_ptr<BasicConv2d> Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1, Conv2d_4a_3x3;
    std::shared_ptr<nn::MaxPool2d> maxpool1, maxpool2;
    std::shared_ptr<InceptionA> Mixed_5b, Mixed_5c, Mixed_5d;
    std::shared_ptr<InceptionB> Mixed_6a;
    std::shared_ptr<InceptionC> Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e;
    std::shared_ptr<InceptionD> Mixed_7a;
    std::shared_ptr<InceptionE> Mixed_7b, Mixed_7c;
    std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool;
    std::shared_ptr<nn::Dropout> dropout;
};

std::shared_ptr<InceptionV3FID> inception_v3_fid(const HeadConfig& head = HeadConfig::linear(1008),
                                                 tensor::Generator* gen = nullptr);

}  // namespace cxr::vision
