// The built-in phantom dataset: procedurally rendered chest-radiograph-like images with known findings and
// demographics, so that the whole study (generator, classifiers, fairness metrics) runs on a machine with no
// data. Not a physical simulation: a projection-radiograph look (bright = attenuating) built from smooth
// analytic shapes.
//
// ANATOMY (normalised coordinates x, y in [-1, 1], y pointing down; each shape has a soft edge of a few pixels,
// edge(d) = smoothstep over +-1.5 px of the signed distance):
//   background air (dark) < lungs (dark, with vessel texture) < soft tissue < mediastinum/heart/abdomen < bone;
//   body: ellipse, half-width 0.80 (male) / 0.72 (female) times (1 + 0.002 (age - 50)) times a per-case jitter;
//   breasts (female): two soft lateral-basal shadows; lungs: two ellipses inside the body; heart: an ellipse
//   left of centre (image right, as displayed radiographs), cardiothoracic width ratio about 0.42;
//   mediastinum and spine: a vertical band; diaphragm domes: the lungs end on two arcs; ribs: periodic bright
//   arcs over the lungs; clavicles: two slanted bars. Bone brightness ("density") falls with age and is lower in
//   women, as bone mineral density does (after the menopause more so).
// FINDINGS (each with a visible, localised sign; CheXpert names):
//   Cardiomegaly: a wider heart (CTR up to about 0.57); Pleural Effusion: a basal opacity with a meniscus in
//   one or both costophrenic regions; Consolidation (labelled Consolidation and Pneumonia): a dense patchy blob
//   in one lung zone; Edema: bilateral perihilar haze with streaks; Atelectasis: a dense linear band in a lower
//   zone; Pneumothorax: an apico-lateral rim of one lung without lung markings, darker, edged by a pleural line;
//   Lung Lesion: a round nodule/mass (radius 0.05-0.10). No Finding = none of them. Lung Opacity is positive when
//   Consolidation, Edema, Atelectasis or Lung Lesion is. Enlarged Cardiomediastinum, Pleural Other, Fracture and
//   Support Devices are never drawn (negative). Each drawn finding has a severity s = 0.15 + 0.85·u (u a per-case
//   draw) so that mild cases are hard to see and no finding is trivially separable: cardiomegaly widens the heart by
//   1 + 0.28 s, makes it 1 + 0.06 s taller and shifts it 0.02 s to the patient's left (normal hearts vary: width
//   ±12 %, height ±8 %, centre ±0.015); an effusion's fluid level sits 0.55 (1 − s) lung half-heights lower and its
//   opacity is ×s² (normal diaphragm domes vary ±0.03 in height per side); consolidation and atelectasis contrast
//   ×s; edema ×s²; lesion contrast
//   ×(0.4 + 0.6 s); pneumothorax darkening ×(0.4 + 0.6 s).
// DEMOGRAPHICS: sex (body width, breast shadows, bone density), age (bone density, body width, lung brightness),
//   race: a subtle global appearance shift (gamma and soft-tissue brightness per category: Asian, Black, Hispanic,
//   White = gamma 1.00, 1.08, 1.03, 0.95 and tissue +0.00, +0.03, +0.015, -0.015) so that a classifier can pick up
//   race and fairness gaps can arise, as the real-data studies report (Gichoya et al., Lancet Digit. Health 2022).
// SITES: site k (0-based, named "site_<k>") differs in exposure (gain 1 - 0.06 k), noise (std 0.015 + 0.01 k),
//   blur (min(k, 2) 3x3 box-blur passes), collimation (dark borders of 2 k px at 64 px, scaled with the size:
//   values x 0.15) and a burnt-in marker (a 4 px square of value 0.95 at 64 px, in the corner chosen by k mod 4,
//   3 px inside the collimated field). Projection differs too: at site k >= 1 a share 0.25 k of the films are AP
//   (portable), where the heart projects 10-18 % wider and 5 % taller, and a share 0.2 k are supine, where an
//   effusion is a faint veil graded towards the base (opacity 0.35 s²) instead of a meniscus. Site 0 has neither,
//   so a model trained there meets both only on held-out sites.
// REPORTS: an impression per image from its findings, with wording varied by the case's random draws.
// RANDOMNESS: case i draws its attributes from the Philox stream `seed` at word offset 256 i (tensor/generator.h)
//   and its pixel noise from the stream seed ^ 0x9E3779B97F4A7C15 at word offset i * 2 ceil(S^2 / 2): a case
//   depends only on (seed, i, options), never on the other cases or on threads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/record.h"
#include "tensor/tensor.h"

namespace cxr::data {

// The findings the phantom draws, by CheXpert name.
const std::vector<std::string>& phantom_findings();

struct PhantomOptions {
    int64_t n = 1000;   // images
    int size = 64;      // pixels per side, 32..512
    uint64_t seed = 0;
    int sites = 2;      // acquisition sites site_0 .. site_<sites-1>, drawn with equal probability
    double female_fraction = 0.5;
    std::array<double, 4> race_weights = {0.25, 0.25, 0.25, 0.25};  // Asian, Black, Hispanic, White
    double age_min = 18, age_max = 90;
    // Prevalence per finding, in phantom_findings() order (Cardiomegaly, Pleural Effusion, Consolidation, Edema,
    // Atelectasis, Pneumothorax, Lung Lesion).
    std::vector<double> prevalence = {0.15, 0.15, 0.12, 0.10, 0.10, 0.08, 0.08};
    // Subgroup imbalance: prevalences are multiplied by this factor for female patients (1: none).
    double female_prevalence_factor = 1.0;
    double train = 0.7, valid = 0.1, test = 0.2;  // patient splits (one image per patient)
};

struct PhantomCase {
    Record record;                 // demographics, labels, site, impression (record.report)
    std::vector<bool> findings;    // phantom_findings() order
    int site = 0;
    std::array<float, 32> shape{};  // per-case anatomical jitter draws in [0, 1)
};

// Throws cxr::Error naming the first bad option (n >= 1, size 32..512, sites 1..8, fractions and prevalences in
// [0, 1], race weights >= 0 and not all zero, 0 <= age_min <= age_max <= 120, 7 prevalences).
void validate_phantom_options(const PhantomOptions& options);
// Draws case i (attributes, findings, impression) — no pixels.
PhantomCase phantom_case(const PhantomOptions& options, int64_t i);
// Renders a case: `size` x `size` floats in [0, 1], row-major.
std::vector<float> render_phantom(const PhantomCase& c, const PhantomOptions& options, int64_t i);
// The same as an f32 tensor [1, S, S].
tensor::Tensor render_phantom_tensor(const PhantomCase& c, const PhantomOptions& options, int64_t i);

// Writes out_dir/images/phantom_<i>.png (8-bit gray) and out_dir/manifest.csv (generic format, paths relative
// to out_dir); returns the records. `progress` (optional) is called after each image with the count done.
std::vector<Record> write_phantom_dataset(const std::string& out_dir, const PhantomOptions& options,
                                          const std::function<void(int64_t)>& progress = {});

}  // namespace cxr::data
