// Tests of the learning-rate schedules (nn/lr_schedule.h):
//   - initial_lr · factor(k) equals the lr torch.optim.lr_scheduler sets for step k (LambdaLR, LinearLR as warmup
//     and as decay, ConstantLR, StepLR, CosineAnnealingLR, SequentialLR(LinearLR, CosineAnnealingLR)); fixtures
//     sched.* in tests/fixtures/optim.* (tests/fixtures/tools/make_optim_fixtures.py);
//   - hand-computed values: diffusers' get_cosine_schedule_with_warmup (start 0, min 0) is k/W during warmup,
//     1 at W, 1/2 halfway through the cosine, 0 at the end and after; step decay is γ^⌊k/n⌋;
//   - apply_lr_schedule scales each group's own initial lr; invalid schedules are refused by field name.
#include "tests/support/testing.h"

#include <cmath>

#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/ops/creation.h"

using namespace cxr::nn;
using cxr::tensor::DType;
using cxr::tensor::Tensor;
using cxr::testing::Fixtures;
namespace T = cxr::tensor;

using cxr::testing::error_of;
TEST_CASE("lr schedules match torch.optim.lr_scheduler", "[cpu][lr_schedule]") {
    Fixtures fx("optim");
    const double base = 0.5;  // SCHED_BASE_LR of the fixture script
    const std::map<std::string, LrSchedule> table = {
        {"constant", LrSchedule::constant()},
        {"linear_warmup", LrSchedule::linear_warmup(8, 0.25)},
        {"linear_decay", LrSchedule::linear(1.0, 0.1, 10)},
        {"constant_warmup", LrSchedule::constant_warmup(0.5, 4)},
        {"step_decay", LrSchedule::step_decay(3, 0.5)},
        {"cosine", LrSchedule::cosine(10, 0.1)},
        {"warmup_cosine", LrSchedule::warmup_cosine(4, 16, 0.2, 0.05)},
    };
    CHECK(fx.names_with_prefix("sched.").size() == table.size());
    for (const auto& kv : table) {
        const std::vector<double> lrs = fx.get("sched." + kv.first).to_vector<double>();
        REQUIRE(lrs.size() > 4);
        for (size_t k = 0; k < lrs.size(); ++k) {
            INFO("schedule " << kv.first << " at step " << k);
            CHECK(std::fabs(base * kv.second.factor((int64_t)k) - lrs[k]) <= 1e-13 + 1e-12 * lrs[k]);
        }
    }
}

TEST_CASE("lr schedules: hand-computed values", "[cpu][lr_schedule]") {
    // diffusers / transformers get_cosine_schedule_with_warmup(W = 10, T = 110)
    LrSchedule s = LrSchedule::warmup_cosine(10, 110);
    CHECK(s.factor(0) == 0.0);
    CHECK(s.factor(3) == Approx(0.3).epsilon(1e-15));
    CHECK(s.factor(10) == 1.0);
    CHECK(s.factor(60) == Approx(0.5).epsilon(1e-15));
    CHECK(s.factor(110) == Approx(0.0).margin(1e-16));
    CHECK(s.factor(500) == Approx(0.0).margin(1e-16));  // held at the minimum after the end
    LrSchedule step = LrSchedule::step_decay(30, 0.1);
    CHECK(step.factor(29) == 1.0);
    CHECK(step.factor(30) == Approx(0.1).epsilon(1e-15));
    CHECK(step.factor(65) == Approx(0.01).epsilon(1e-15));
    LrSchedule lin = LrSchedule::linear_warmup(4);
    CHECK(lin.factor(0) == 0.0);
    CHECK(lin.factor(1) == 0.25);
    CHECK(lin.factor(4) == 1.0);
    CHECK(lin.factor(40) == 1.0);
    CHECK(LrSchedule::cosine(4, 0.2).factor(2) == Approx(0.6).epsilon(1e-15));
    CHECK(LrSchedule::constant().factor(12345) == 1.0);
}

TEST_CASE("apply_lr_schedule scales each group's initial lr", "[cpu][lr_schedule]") {
    Tensor a = T::zeros({2}, DType::f32).set_requires_grad(true);
    Tensor b = T::zeros({2}, DType::f32).set_requires_grad(true);
    SGDOptions o1, o2;
    o1.lr = 0.1;
    o2.lr = 0.02;
    SGD opt(std::vector<ParamGroup<SGDOptions>>{{{a}, o1}, {{b}, o2}});
    LrSchedule s = LrSchedule::linear_warmup(4, 0.0);
    apply_lr_schedule(opt, s, 1);
    CHECK(opt.lr(0) == Approx(0.025).epsilon(1e-15));
    CHECK(opt.lr(1) == Approx(0.005).epsilon(1e-15));
    CHECK(opt.initial_lr(0) == 0.1);
    apply_lr_schedule(opt, s, 9);
    CHECK(opt.lr(1) == 0.02);
}

TEST_CASE("lr schedule validation and names", "[cpu][lr_schedule]") {
    CHECK_THAT(error_of([] { LrSchedule::warmup_cosine(10, 10); }), Catch::Contains("total_steps"));
    CHECK_THAT(error_of([] { LrSchedule::step_decay(0, 0.1); }), Catch::Contains("step_size"));
    CHECK_THAT(error_of([] { LrSchedule::cosine(10, 1.5); }), Catch::Contains("min_factor"));
    CHECK_THAT(error_of([] { LrSchedule::constant().factor(-1); }), Catch::Contains("negative step"));
    CHECK_THAT(error_of([] { parse_lr_schedule_kind("cosine_restarts"); }), Catch::Contains("cosine_restarts"));
    for (const char* n : {"constant", "linear", "constant_warmup", "step_decay", "cosine", "warmup_cosine"}) {
        LrSchedule s;
        s.kind = parse_lr_schedule_kind(n);
        CHECK(s.name() == n);
    }
}
