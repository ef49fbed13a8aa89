// SSIM, MS-SSIM, intra-prompt diversity and paired cosine similarity (metrics/ssim.h), composed from cxr tensor
// ops: one grouped, separable Gaussian convolution filters x, y, x², y², xy together ([N, 5C, H, W]), and
// avg_pool2d downsamples between the MS-SSIM scales (Wang, Simoncelli & Bovik 2003; pytorch_msssim's choices of
// valid filtering, relu on the terms and odd-size padding).
#include "metrics/ssim.h"

#include <cmath>
#include <limits>
#include <string>

#include "tensor/error.h"
#include "tensor/ops/conv.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/index.h"
#include "tensor/ops/pool.h"
#include "tensor/ops/reduce.h"
#include "tensor/ops/view.h"

namespace cxr::metrics {

using namespace cxr::tensor;

Tensor gaussian_window(int64_t size, double sigma) {
    CXR_CHECK(size >= 1 && size % 2 == 1, "SSIM: the Gaussian window size must be odd and positive, got ", size);
    CXR_CHECK(sigma > 0, "SSIM: the Gaussian window sigma must be positive, got ", sigma);
    std::vector<double> g(size);
    double total = 0;
    for (int64_t i = 0; i < size; ++i) {
        const double c = (double)(i - size / 2);
        g[i] = std::exp(-c * c / (2.0 * sigma * sigma));
        total += g[i];
    }
    for (double& v : g) v /= total;
    return from_vector(g, {size}, DType::f64);
}

namespace {

DType compute_dtype_for(const Tensor& x, const SsimOptions& o) {
    if (o.compute_dtype) {
        CXR_CHECK(*o.compute_dtype == DType::f32 || *o.compute_dtype == DType::f64,
                  "SSIM: compute_dtype must be f32 or f64, got ", dtype_name(*o.compute_dtype));
        return *o.compute_dtype;
    }
    return x.dtype() == DType::f64 ? DType::f64 : DType::f32;
}

void check_pair(const Tensor& x, const Tensor& y, const SsimOptions& o, const char* what) {
    CXR_CHECK(x.dim() == 4, what, ": images must be [N, C, H, W], got ", shape_str(x.sizes()));
    CXR_CHECK(x.sizes() == y.sizes(), what, ": the two image batches differ in shape: ", shape_str(x.sizes()), " and ",
              shape_str(y.sizes()));
    CXR_CHECK(x.device() == y.device(), what, ": the two image batches are on different devices");
    CXR_CHECK(o.data_range > 0, what, ": data_range must be positive, got ", o.data_range);
    CXR_CHECK(o.window_size >= 1 && o.window_size % 2 == 1, what, ": the window size must be odd, got ",
              o.window_size);
}

// One SSIM evaluation on images already in the compute dtype.
SsimComponents components(const Tensor& x, const Tensor& y, const Tensor& window, const SsimOptions& o) {
    const int64_t c = x.size(1), k = o.window_size;
    CXR_CHECK(x.size(2) >= k && x.size(3) >= k, "SSIM: images of ", x.size(2), "x", x.size(3),
              " are smaller than the ", k, "x", k, " window");
    const double c1 = (o.k1 * o.data_range) * (o.k1 * o.data_range);
    const double c2 = (o.k2 * o.data_range) * (o.k2 * o.data_range);
    Tensor stacked = cat({x, y, x * x, y * y, x * y}, 1);  // [N, 5C, H, W]
    const int64_t g = 5 * c;
    Tensor w_h = window.reshape({1, 1, k, 1}).expand({g, 1, k, 1}).contiguous();  // [5C, 1, k, 1]
    Tensor w_w = window.reshape({1, 1, 1, k}).expand({g, 1, 1, k}).contiguous();  // [5C, 1, 1, k]
    Tensor f = conv2d(conv2d(stacked, w_h, Tensor(), {1, 1}, {0, 0}, {1, 1}, g), w_w, Tensor(), {1, 1}, {0, 0},
                      {1, 1}, g);  // [N, 5C, H - k + 1, W - k + 1]
    Tensor mu_x = f.narrow(1, 0, c), mu_y = f.narrow(1, c, c);
    Tensor mu_xx = mu_x * mu_x, mu_yy = mu_y * mu_y, mu_xy = mu_x * mu_y;
    Tensor var_x = f.narrow(1, 2 * c, c) - mu_xx;
    Tensor var_y = f.narrow(1, 3 * c, c) - mu_yy;
    Tensor cov_xy = f.narrow(1, 4 * c, c) - mu_xy;
    Tensor cs_map = (cov_xy * 2.0 + c2) / (var_x + var_y + c2);              // [N, C, H', W']
    Tensor ssim_map = (mu_xy * 2.0 + c1) / (mu_xx + mu_yy + c1) * cs_map;    // [N, C, H', W']
    return {mean(ssim_map, {2, 3}), mean(cs_map, {2, 3})};
}

Tensor window_for(const Tensor& x, const SsimOptions& o, DType dt) {
    return gaussian_window(o.window_size, o.window_sigma).to(dt).to(x.device());
}

}  // namespace

SsimComponents ssim_components(const Tensor& x, const Tensor& y, const SsimOptions& options) {
    check_pair(x, y, options, "SSIM");
    const DType dt = compute_dtype_for(x, options);
    return components(x.to(dt), y.to(dt), window_for(x, options, dt), options);
}

Tensor ssim(const Tensor& x, const Tensor& y, const SsimOptions& options) {
    return mean(ssim_components(x, y, options).ssim, {1});
}

Tensor ms_ssim(const Tensor& x, const Tensor& y, const SsimOptions& options) {
    check_pair(x, y, options, "MS-SSIM");
    const int64_t levels = (int64_t)options.scale_weights.size();
    CXR_CHECK(levels >= 1, "MS-SSIM: needs at least one scale weight");
    const int64_t min_side = std::min(x.size(2), x.size(3));
    const int64_t need = (options.window_size - 1) * (int64_t(1) << (levels - 1));
    CXR_CHECK(min_side > need, "MS-SSIM: images of ", x.size(2), "x", x.size(3), " are too small for ", levels,
              " scales with a ", options.window_size, "x", options.window_size, " window: each side must exceed ",
              need, " pixels");
    const DType dt = compute_dtype_for(x, options);
    Tensor window = window_for(x, options, dt);
    Tensor xs = x.to(dt), ys = y.to(dt);  // [N, C, H_j, W_j] at scale j
    Tensor result;                         // [N, C]
    for (int64_t j = 0; j < levels; ++j) {
        SsimComponents comp = components(xs, ys, window, options);
        const bool last = j == levels - 1;
        Tensor term = pow(relu(last ? comp.ssim : comp.cs), options.scale_weights[j]);  // [N, C]
        result = result.defined() ? result * term : term;
        if (!last) {
            const Size2 pad = {xs.size(2) % 2, xs.size(3) % 2};
            xs = avg_pool2d(xs, {2, 2}, {2, 2}, pad);
            ys = avg_pool2d(ys, {2, 2}, {2, 2}, pad);
        }
    }
    return mean(result, {1});
}

double mean_pairwise_ms_ssim(const Tensor& images, const SsimOptions& options, int64_t max_pairs_per_batch) {
    CXR_CHECK(images.dim() == 4, "diversity: a group of images must be [K, C, H, W], got ",
              shape_str(images.sizes()));
    const int64_t k = images.size(0);
    CXR_CHECK(k >= 2, "diversity: mean pairwise MS-SSIM needs at least 2 images, got ", k);
    CXR_CHECK(max_pairs_per_batch >= 1, "diversity: max_pairs_per_batch must be positive");
    std::vector<int64_t> first, second;
    for (int64_t i = 0; i < k; ++i)
        for (int64_t j = i + 1; j < k; ++j) {
            first.push_back(i);
            second.push_back(j);
        }
    const int64_t pairs = (int64_t)first.size();
    double total = 0;
    for (int64_t start = 0; start < pairs; start += max_pairs_per_batch) {
        const int64_t len = std::min(max_pairs_per_batch, pairs - start);
        std::vector<int64_t> a(first.begin() + start, first.begin() + start + len);
        std::vector<int64_t> b(second.begin() + start, second.begin() + start + len);
        Tensor ia = from_vector(a, {len}).to(images.device()), ib = from_vector(b, {len}).to(images.device());
        Tensor values = ms_ssim(index_select(images, 0, ia), index_select(images, 0, ib), options);  // [len]
        total += sum(values.to(DType::f64)).item();
    }
    return total / (double)pairs;
}

DiversityResult intra_prompt_diversity(const std::vector<Tensor>& groups, const SsimOptions& options,
                                       int64_t max_pairs_per_batch) {
    CXR_CHECK(!groups.empty(), "diversity: no prompt groups given");
    DiversityResult r;
    for (size_t g = 0; g < groups.size(); ++g) {
        CXR_CHECK(groups[g].dim() == 4 && groups[g].size(0) >= 2, "diversity: prompt group ", g,
                  " needs [K, C, H, W] with K >= 2 images, got ", shape_str(groups[g].sizes()));
        r.per_group.push_back(mean_pairwise_ms_ssim(groups[g], options, max_pairs_per_batch));
        r.mean += r.per_group.back();
    }
    r.mean /= (double)groups.size();
    return r;
}

Tensor cosine_similarity_rows(const Tensor& a, const Tensor& b, double eps) {
    CXR_CHECK(a.dim() == 2 && a.sizes() == b.sizes(), "cosine similarity: expected two [N, D] tensors of one shape, got ",
              shape_str(a.sizes()), " and ", shape_str(b.sizes()));
    CXR_CHECK(is_floating(a.dtype()) && is_floating(b.dtype()), "cosine similarity: embeddings must be floating point");
    Tensor a64 = a.to(DType::f64), b64 = b.to(DType::f64).to(a.device());                 // [N, D]
    const double inf = std::numeric_limits<double>::infinity();
    Tensor na = clamp(sqrt(sum(a64 * a64, {1})), eps, inf), nb = clamp(sqrt(sum(b64 * b64, {1})), eps, inf);  // [N]
    return sum(a64 * b64, {1}) / (na * nb);
}

double mean_cosine_similarity(const Tensor& a, const Tensor& b, double eps) {
    CXR_CHECK(a.dim() == 2 && a.size(0) >= 1, "cosine similarity: needs at least one row, got ", shape_str(a.sizes()));
    return mean(cosine_similarity_rows(a, b, eps)).item();
}

}  // namespace cxr::metrics
