// The phantom chest-radiograph generator (design, shapes, demographic and site effects in data/phantom.h).
#include "data/phantom.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/adapters/adapters.h"
#include "data/image_io.h"
#include "data/labels.h"
#include "data/select.h"
#include "tensor/error.h"
#include "tensor/generator.h"
#include "tensor/ops/creation.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

constexpr uint64_t kCaseWords = 256;
constexpr uint64_t kNoiseSeedMix = 0x9E3779B97F4A7C15ull;
enum Finding { kCardio = 0, kEffusion, kConsolidation, kEdema, kAtelectasis, kPneumothorax, kLesion, kNumFindings };

// Draw slots in the case's 256 uniforms.
enum Slot { kSex = 0, kRace = 1, kAge = 2, kSite = 3, kFindings = 4, kShape = 16, kWording = 48, kSide = 64 };

float smoothstep01(float t) {
    t = std::clamp(t, 0.0f, 1.0f);
    return t * t * (3.0f - 2.0f * t);
}
// Soft inside-indicator of a signed distance d (negative inside), edge width w.
float inside(float d, float w) { return smoothstep01(0.5f - d / (2.0f * w)); }
// Approximate signed distance to an axis-aligned ellipse.
float ellipse_sd(float x, float y, float cx, float cy, float a, float b) {
    const float dx = (x - cx) / a, dy = (y - cy) / b;
    return (std::sqrt(dx * dx + dy * dy) - 1.0f) * std::min(a, b);
}
// Distance from (x, y) to the segment (x0, y0)-(x1, y1).
float segment_distance(float x, float y, float x0, float y0, float x1, float y1) {
    const float vx = x1 - x0, vy = y1 - y0;
    const float t = std::clamp(((x - x0) * vx + (y - y0) * vy) / (vx * vx + vy * vy), 0.0f, 1.0f);
    const float dx = x - (x0 + t * vx), dy = y - (y0 + t * vy);
    return std::sqrt(dx * dx + dy * dy);
}

const char* pick(const std::vector<const char*>& options, float u) {
    return options[std::min(options.size() - 1, (size_t)(u * (float)options.size()))];
}

struct Lung {
    float cx, cy, a, b;
};

// The geometry shared by the renderer and the wording (sides).
struct Geometry {
    float body_a, body_b, body_cy, scale;
    Lung lung[2];  // 0: image left (patient's right), 1: image right (patient's left)
    float heart_cx, heart_cy, heart_a, heart_b;
};

Geometry geometry(const PhantomCase& c) {
    const auto& u = c.shape;
    const Record& r = c.record;
    Geometry g;
    const double age = r.has_age() ? r.age : 50.0;
    g.body_a = (r.sex == Sex::female ? 0.72f : 0.80f) * (float)(1.0 + 0.002 * (age - 50.0)) * (0.95f + 0.10f * u[0]);
    g.body_b = 1.05f;
    g.body_cy = 0.12f;
    g.scale = g.body_a / 0.80f;
    const float lh = 0.52f + 0.06f * u[1];
    g.lung[0] = {-0.34f * g.scale, -0.02f, 0.25f * g.scale, lh};
    g.lung[1] = {0.34f * g.scale, 0.0f, 0.24f * g.scale, lh - 0.02f};
    const bool cardio = c.findings[kCardio];
    // Cardiomegaly widens the heart by 1 + 0.28·severity (severity = 0.15 + 0.85·u[17]), makes it 6 % taller and
    // moves it 0.02·severity to the patient's left. Normal hearts vary in all three (width ±12 %, height ±8 %,
    // centre ±0.015), so mild cases overlap large normal hearts and no single cue separates them.
    const float sev = 0.15f + 0.85f * u[17 + kCardio];
    const float widen = cardio ? 1.0f + 0.28f * sev : 1.0f;
    g.heart_a = 0.19f * g.scale * (0.88f + 0.24f * u[2]) * widen;
    g.heart_b = 0.19f * (0.92f + 0.16f * u[24]) * (cardio ? 1.0f + 0.06f * sev : 1.0f);
    g.heart_cx = 0.08f * g.scale + 0.03f * (u[25] - 0.5f) + (cardio ? 0.02f * sev : 0.0f);
    g.heart_cy = 0.30f;
    // AP (portable) films, a share 0.25·site of the images at sites 1+: the heart lies far from the detector and
    // projects 10-18 % wider and 5 % taller, so a normal heart can look enlarged there.
    if (c.site > 0 && u[28] < 0.25f * (float)c.site) {
        g.heart_a *= 1.10f + 0.08f * u[29];
        g.heart_b *= 1.05f;
    }
    return g;
}

std::string side_word(int lung) { return lung == 0 ? "right" : "left"; }

std::string impression_for(const PhantomCase& c, const float* w) {
    std::string s;
    auto add = [&](const std::string& t) { s += (s.empty() ? "" : " ") + t; };
    const int eff_side = w[kSide] < 0.4f ? 0 : w[kSide] < 0.8f ? 1 : 2;
    if (c.findings[kCardio])
        add(pick({"Cardiomegaly.", "The heart is enlarged.", "Enlarged cardiac silhouette."}, w[kWording + 0]));
    if (c.findings[kEffusion])
        add(eff_side == 2 ? std::string(pick({"Bilateral pleural effusions.", "Small bilateral pleural effusions."},
                                             w[kWording + 1]))
                          : std::string(pick({"Small ", "Moderate ", ""}, w[kWording + 1])) +
                                side_word(eff_side) + " pleural effusion.");
    if (c.findings[kConsolidation])
        add(std::string(pick({"Focal consolidation in the ", "Airspace opacity in the ", "Patchy consolidation in the "},
                             w[kWording + 2])) +
            side_word(w[kSide + 1] < 0.5f ? 0 : 1) + " lung, concerning for pneumonia.");
    if (c.findings[kEdema])
        add(pick({"Pulmonary edema.", "Perihilar haziness consistent with mild pulmonary edema.",
                  "Interstitial edema."},
                 w[kWording + 3]));
    if (c.findings[kAtelectasis])
        add(std::string(pick({"Linear atelectasis at the ", "Subsegmental atelectasis at the ", "Plate-like atelectasis at the "},
                             w[kWording + 4])) +
            side_word(w[kSide + 2] < 0.5f ? 0 : 1) + " base.");
    if (c.findings[kPneumothorax])
        add(std::string(pick({"Small ", "Apical ", "Moderate "}, w[kWording + 5])) + side_word(w[kSide + 3] < 0.5f ? 0 : 1) +
            " pneumothorax.");
    if (c.findings[kLesion])
        add(pick({"Pulmonary nodule.", "Rounded opacity, possibly a mass.", "Nodular density in the lung."},
                 w[kWording + 6]));
    if (s.empty())
        add(pick({"No acute cardiopulmonary abnormality.", "Normal chest radiograph.",
                  "No acute cardiopulmonary process.", "Clear lungs. Normal heart size."},
                 w[kWording + 7]));
    return s;
}

}  // namespace

const std::vector<std::string>& phantom_findings() {
    static const std::vector<std::string> f = {"Cardiomegaly", "Pleural Effusion", "Consolidation", "Edema",
                                               "Atelectasis",  "Pneumothorax",     "Lung Lesion"};
    return f;
}

void validate_phantom_options(const PhantomOptions& o) {
    CXR_CHECK(o.n >= 1, "phantom: n must be >= 1, got ", o.n);
    CXR_CHECK(o.size >= 32 && o.size <= 512, "phantom: size must be in 32..512, got ", o.size);
    CXR_CHECK(o.sites >= 1 && o.sites <= 8, "phantom: sites must be in 1..8, got ", o.sites);
    CXR_CHECK(o.female_fraction >= 0 && o.female_fraction <= 1, "phantom: female fraction must be in [0, 1], got ",
              o.female_fraction);
    double total = 0;
    for (double w : o.race_weights) {
        CXR_CHECK(w >= 0 && std::isfinite(w), "phantom: race weights must be finite and >= 0, got ", w);
        total += w;
    }
    CXR_CHECK(total > 0, "phantom: race weights must not all be zero");
    CXR_CHECK(o.age_min >= 0 && o.age_max >= o.age_min && o.age_max <= 120,
              "phantom: age range must satisfy 0 <= min <= max <= 120, got ", o.age_min, "..", o.age_max);
    CXR_CHECK(o.prevalence.size() == (size_t)kNumFindings, "phantom: prevalence needs ", (int)kNumFindings,
              " values (one per finding), got ", o.prevalence.size());
    for (size_t f = 0; f < o.prevalence.size(); ++f)
        CXR_CHECK(o.prevalence[f] >= 0 && o.prevalence[f] <= 1, "phantom: prevalence of ", phantom_findings()[f],
                  " must be in [0, 1], got ", o.prevalence[f]);
    CXR_CHECK(o.female_prevalence_factor >= 0 && std::isfinite(o.female_prevalence_factor),
              "phantom: female prevalence factor must be >= 0, got ", o.female_prevalence_factor);
    CXR_CHECK(o.train >= 0 && o.valid >= 0 && o.test >= 0 && o.train + o.valid + o.test > 0,
              "phantom: split fractions must be >= 0 and not all zero");
}

PhantomCase phantom_case(const PhantomOptions& o, int64_t i) {
    validate_phantom_options(o);
    float u[kCaseWords];
    tensor::fill_uniform_f32(u, (int64_t)kCaseWords, o.seed, kCaseWords * (uint64_t)i, 0.0f, 1.0f);
    PhantomCase c;
    Record& r = c.record;
    r.sex = u[kSex] < o.female_fraction ? Sex::female : Sex::male;
    double total = 0;
    for (double w : o.race_weights) total += w;
    double acc = 0;
    int race = 3;
    for (int k = 0; k < 4; ++k) {
        acc += o.race_weights[k] / total;
        if (u[kRace] < acc) {
            race = k;
            break;
        }
    }
    r.race = known_races()[race];
    r.race_source = race_name(r.race);
    r.age = std::round(o.age_min + u[kAge] * (o.age_max - o.age_min));
    c.site = std::min(o.sites - 1, (int)(u[kSite] * (float)o.sites));
    c.findings.assign(kNumFindings, false);
    const double factor = r.sex == Sex::female ? o.female_prevalence_factor : 1.0;
    for (int f = 0; f < kNumFindings; ++f) c.findings[f] = u[kFindings + f] < std::min(1.0, o.prevalence[f] * factor);
    for (int k = 0; k < 32; ++k) c.shape[k] = u[kShape + k];

    auto set = [&](const char* name, bool v) { r.labels[label_index(name)] = v ? LabelValue::positive : LabelValue::negative; };
    bool any = false;
    for (int f = 0; f < kNumFindings; ++f) {
        set(phantom_findings()[f].c_str(), c.findings[f]);
        any = any || c.findings[f];
        if (c.findings[f]) r.source_findings.push_back(phantom_findings()[f]);
    }
    set("Pneumonia", c.findings[kConsolidation]);
    set("Lung Opacity", c.findings[kConsolidation] || c.findings[kEdema] || c.findings[kAtelectasis] || c.findings[kLesion]);
    set("No Finding", !any);
    for (const char* n : {"Enlarged Cardiomediastinum", "Pleural Other", "Fracture", "Support Devices"}) set(n, false);
    char id[32];
    std::snprintf(id, sizeof id, "P%07lld", (long long)i);
    r.patient_id = id;
    r.study_id = id;
    r.view = View::pa;
    r.dataset = "phantom";
    r.site = "site_" + std::to_string(c.site);
    r.report = impression_for(c, u);
    return c;
}

std::vector<float> render_phantom(const PhantomCase& c, const PhantomOptions& o, int64_t index) {
    const int S = o.size;
    validate_phantom_options(o);
    CXR_CHECK(c.findings.size() == (size_t)kNumFindings && c.site >= 0 && c.site < 8, "phantom: malformed case");
    const Geometry g = geometry(c);
    const Record& r = c.record;
    const auto& u = c.shape;
    float w[kCaseWords];
    tensor::fill_uniform_f32(w, (int64_t)kCaseWords, o.seed, kCaseWords * (uint64_t)index, 0.0f, 1.0f);
    const float px = 2.0f / (float)S, edge = 1.5f * px;
    const double age = r.has_age() ? r.age : 50.0;
    const bool female = r.sex == Sex::female;
    // Bone "density": falls with age, more in women after 50.
    const float bone = (float)(0.17 * (1.0 - 0.005 * std::max(0.0, age - 30.0)) *
                               (female ? (age > 50 ? 0.85 : 0.93) : 1.0));
    static const float race_gamma[4] = {1.00f, 1.08f, 1.03f, 0.95f};
    static const float race_tissue[4] = {0.0f, 0.03f, 0.015f, -0.015f};
    const int race = std::min(3, (int)r.race);
    const float tissue = 0.40f + race_tissue[race] + 0.04f * (u[3] - 0.5f);
    const float lung_level = 0.13f + 0.0008f * (float)(age - 50.0);

    // Finding parameters.
    const int eff_side = w[kSide] < 0.4f ? 0 : w[kSide] < 0.8f ? 1 : 2;
    const int cons_lung = w[kSide + 1] < 0.5f ? 0 : 1, atel_lung = w[kSide + 2] < 0.5f ? 0 : 1,
              ptx_lung = w[kSide + 3] < 0.5f ? 0 : 1, les_lung = w[kSide + 4] < 0.5f ? 0 : 1;
    const Lung& cl = g.lung[cons_lung];
    const float cons_x = cl.cx + (u[4] - 0.5f) * cl.a, cons_y = cl.cy + (u[5] - 0.2f) * 0.8f * cl.b,
                cons_s = 0.10f + 0.06f * u[6];
    const Lung& al = g.lung[atel_lung];
    const float atel_y = al.cy + (0.45f + 0.15f * u[7]) * al.b, atel_tilt = (u[8] - 0.5f) * 0.4f;
    const Lung& ll = g.lung[les_lung];
    const float les_x = ll.cx + (u[9] - 0.5f) * 0.9f * ll.a, les_y = ll.cy + (u[10] - 0.5f) * 1.0f * ll.b,
                les_r = 0.05f + 0.05f * u[11];
    const float ptx_rho = 0.70f + 0.08f * u[12];
    // Severity of each drawn finding in [0.15, 1] (u[17 + finding]): mild cases are hard to see, so findings are
    // learnable but not trivially separable (data/phantom.h FINDINGS).
    float sev[kNumFindings];
    for (int k = 0; k < kNumFindings; ++k) sev[k] = 0.15f + 0.85f * u[17 + k];
    const float rib_phase = u[13] * 0.17f;
    // Supine films, a share 0.2·site of the images at sites 1+ (data/phantom.h SITES).
    const bool supine = c.site > 0 && u[30] < 0.2f * (float)c.site;

    std::vector<float> img((size_t)S * S);
    for (int yi = 0; yi < S; ++yi) {
        const float y = ((float)yi + 0.5f) * px - 1.0f;
        for (int xi = 0; xi < S; ++xi) {
            const float x = ((float)xi + 0.5f) * px - 1.0f;
            float I = 0.04f;  // air outside the body
            const float body = inside(ellipse_sd(x, y, 0.0f, g.body_cy, g.body_a, g.body_b), edge);
            I += (tissue - 0.04f) * body;
            if (female) {
                for (float sx : {-1.0f, 1.0f})
                    I += 0.06f * body * inside(ellipse_sd(x, y, sx * 0.50f * g.scale, 0.48f, 0.26f * g.scale, 0.20f), 4 * edge);
            }
            // Abdomen below the diaphragm domes.
            // Each dome's height varies between patients (±0.03 per side, u[26] right, u[27] left), so a high
            // normal diaphragm resembles a small effusion.
            const float dome = 0.50f + 0.10f * x * x +
                               0.06f * ((u[26] - 0.5f) + (u[27] - u[26]) * smoothstep01(x / 0.2f + 0.5f));
            I += (0.60f - tissue) * body * smoothstep01((y - dome) / (2 * edge) + 0.5f);
            // Lungs (with vessel texture) and their diaphragm-cut bases.
            float lung_mask[2];
            float lungs = 0;
            for (int k = 0; k < 2; ++k) {
                const Lung& L = g.lung[k];
                lung_mask[k] = inside(ellipse_sd(x, y, L.cx, L.cy, L.a, L.b), edge) *
                               (1.0f - smoothstep01((y - (dome - 0.03f)) / (2 * edge) + 0.5f));
                lungs += lung_mask[k];
            }
            lungs = std::min(1.0f, lungs);
            const float hx = x < 0 ? -0.16f * g.scale : 0.16f * g.scale;
            const float rh = std::sqrt((x - hx) * (x - hx) + (y - 0.02f) * (y - 0.02f));
            const float vessels = 0.03f * std::exp(-2.5f * rh) * (0.5f + 0.5f * std::cos(34.0f * std::atan2(y - 0.02f, x - hx)));
            I += (lung_level + vessels - I) * lungs;
            // Mediastinum and heart.
            const float med = inside(std::fabs(x - 0.01f) - 0.085f * g.scale, edge) * inside(-0.95f - y, edge) *
                              inside(y - 0.45f, edge);
            I += (0.64f - I) * med;
            const float heart = inside(ellipse_sd(x, y, g.heart_cx, g.heart_cy, g.heart_a, g.heart_b), edge);
            I += (0.66f - I) * heart;
            // Findings inside the lungs.
            if (c.findings[kEffusion] && supine) {
                // supine film: the fluid layers behind the lung, a faint veil graded towards the base, no meniscus
                for (int k = 0; k < 2; ++k) {
                    if (eff_side != 2 && eff_side != k) continue;
                    const Lung& L = g.lung[k];
                    const float m = lung_mask[k] * std::clamp(0.5f + (y - L.cy) / (2.0f * L.b), 0.0f, 1.0f);
                    I += (0.60f - I) * m * 0.35f * sev[kEffusion] * sev[kEffusion];
                }
            } else if (c.findings[kEffusion]) {
                for (int k = 0; k < 2; ++k) {
                    if (eff_side != 2 && eff_side != k) continue;
                    const Lung& L = g.lung[k];
                    const float lateral = std::clamp((x - L.cx) * (k == 0 ? -1.0f : 1.0f) / L.a, -1.0f, 1.0f);
                    // a mild effusion only fills the costophrenic angle: the level sits lower, the fluid is fainter
                    const float level = L.cy + L.b * (0.42f - 0.12f * u[14] + 0.55f * (1.0f - sev[kEffusion])) -
                                        0.14f * (lateral + 1.0f) * 0.5f;
                    const float m = lung_mask[k] * smoothstep01((y - level) / (3 * edge) + 0.5f);
                    I += (0.60f - I) * m * sev[kEffusion] * sev[kEffusion];
                }
            }
            if (c.findings[kConsolidation]) {
                const float d2 = ((x - cons_x) * (x - cons_x) + (y - cons_y) * (y - cons_y)) / (cons_s * cons_s);
                const float patch = 0.75f + 0.25f * std::sin(41.0f * x + 7.0f * u[15]) * std::cos(37.0f * y);
                I += 0.30f * sev[kConsolidation] * std::exp(-d2) * patch * lung_mask[cons_lung];
            }
            if (c.findings[kEdema]) {
                const float g2 = std::exp(-(rh * rh) / (2 * 0.17f * 0.17f));
                I += sev[kEdema] * sev[kEdema] * (0.14f * g2 + 0.05f * g2 * std::fabs(std::cos(23.0f * std::atan2(y - 0.02f, x - hx)))) * lungs;
            }
            if (c.findings[kAtelectasis]) {
                const float d = std::fabs((y - atel_y) - atel_tilt * (x - al.cx));
                I += 0.28f * sev[kAtelectasis] * inside(d - 0.022f, edge) * lung_mask[atel_lung];
            }
            if (c.findings[kPneumothorax]) {
                const Lung& L = g.lung[ptx_lung];
                const float dx = (x - L.cx) / L.a, dy = (y - L.cy) / L.b;
                const float rho = std::sqrt(dx * dx + dy * dy);
                const float lat = dx * (ptx_lung == 0 ? -1.0f : 1.0f);
                const float region = smoothstep01((lat + 0.2f - dy) * 2.0f) * lung_mask[ptx_lung];
                const float rim = smoothstep01((rho - ptx_rho) / (2 * edge / L.a) + 0.5f) * region;
                I += (0.035f - I) * rim * (0.4f + 0.6f * sev[kPneumothorax]);
                I += 0.10f * inside(std::fabs(rho - ptx_rho) * L.a - 0.5f * px, 0.5f * edge) * region;
            }
            if (c.findings[kLesion]) {
                I += 0.30f * (0.4f + 0.6f * sev[kLesion]) * inside(std::sqrt((x - les_x) * (x - les_x) + (y - les_y) * (y - les_y)) - les_r, edge) *
                     lung_mask[les_lung];
            }
            // Bones: ribs over the chest, spine, clavicles.
            const float ry = y + 0.20f * x * x + rib_phase;
            const float rib = smoothstep01((std::cos(2.0f * 3.14159265f * ry / 0.17f) - 0.55f) * 4.0f);
            I += bone * 0.55f * rib * body * inside(y - 0.48f, 4 * edge) * inside(std::fabs(x) - 0.9f * g.body_a, edge);
            I += bone * 0.8f * inside(std::fabs(x - 0.01f) - 0.045f * g.scale, edge) * body;
            for (float sx : {-1.0f, 1.0f}) {
                const float d = segment_distance(x, y, sx * 0.10f, -0.70f, sx * 0.62f * g.scale, -0.80f + 0.04f * u[16]);
                I += bone * 1.3f * inside(d - 0.030f, edge);
            }
            img[(size_t)yi * S + xi] = std::clamp(I, 0.0f, 1.0f);
        }
    }
    // Race: global gamma; site: exposure, blur, noise, marker, collimation.
    const float gamma = race_gamma[race];
    const float gain = 1.0f - 0.06f * (float)c.site;
    for (float& v : img) v = gain * std::pow(v, gamma);
    for (int pass = 0; pass < std::min(c.site, 2); ++pass) {
        std::vector<float> tmp(img);
        for (int yi = 0; yi < S; ++yi)
            for (int xi = 0; xi < S; ++xi) {
                float s = 0;
                int n = 0;
                for (int dy = -1; dy <= 1; ++dy)
                    for (int dx = -1; dx <= 1; ++dx) {
                        const int yy = yi + dy, xx = xi + dx;
                        if (yy < 0 || yy >= S || xx < 0 || xx >= S) continue;
                        s += tmp[(size_t)yy * S + xx];
                        ++n;
                    }
                img[(size_t)yi * S + xi] = s / (float)n;
            }
    }
    std::vector<float> noise(img.size());
    tensor::fill_normal_f32(noise.data(), (int64_t)noise.size(), o.seed ^ kNoiseSeedMix,
                            (uint64_t)index * 2 * (((uint64_t)S * S + 1) / 2), 0.0f, 0.015f + 0.01f * (float)c.site);
    for (size_t k = 0; k < img.size(); ++k) img[k] += noise[k];
    const int unit = std::max(1, S / 64);
    const int border = 2 * c.site * unit;
    for (int yi = 0; yi < S; ++yi)
        for (int xi = 0; xi < S; ++xi)
            if (yi < border || yi >= S - border || xi < border || xi >= S - border) img[(size_t)yi * S + xi] *= 0.15f;
    // Marker: a bright square in a corner chosen by the site, inside the collimated field.
    const int m = border + 3 * unit, ms = 4 * unit;
    const int my = (c.site / 2) % 2 ? S - m - ms : m, mx = c.site % 2 ? S - m - ms : m;
    for (int yi = my; yi < my + ms; ++yi)
        for (int xi = mx; xi < mx + ms; ++xi) img[(size_t)yi * S + xi] = 0.95f;
    for (float& v : img) v = std::clamp(v, 0.0f, 1.0f);
    return img;
}

tensor::Tensor render_phantom_tensor(const PhantomCase& c, const PhantomOptions& options, int64_t i) {
    return tensor::from_vector(render_phantom(c, options, i), {1, options.size, options.size});
}

std::vector<Record> write_phantom_dataset(const std::string& out_dir, const PhantomOptions& o,
                                          const std::function<void(int64_t)>& progress) {
    validate_phantom_options(o);
    const fs::path images = fs::path(out_dir) / "images";
    fs::create_directories(images);
    std::vector<Record> records((size_t)o.n);
    const int64_t chunk = 256;
    for (int64_t start = 0; start < o.n; start += chunk) {
        const int64_t end = std::min(o.n, start + chunk);
        std::string error;
#pragma omp parallel for schedule(dynamic, 8)
        for (int64_t i = start; i < end; ++i) {
            try {
                PhantomCase c = phantom_case(o, i);
                char name[48];
                std::snprintf(name, sizeof name, "phantom_%07lld.png", (long long)i);
                const std::string path = (images / name).string();
                write_png(path, render_phantom_tensor(c, o, i), 8);
                c.record.image_path = path;
                records[(size_t)i] = std::move(c.record);
            } catch (const std::exception& e) {
#pragma omp critical(cxr_phantom_error)
                if (error.empty()) error = e.what();
            }
        }
        CXR_CHECK(error.empty(), "phantom: ", error);
        if (progress) progress(end);
    }
    assign_patient_splits(records, SplitFractions{o.train, o.valid, o.test}, o.seed);
    write_manifest((fs::path(out_dir) / "manifest.csv").string(), records, out_dir);
    return records;
}

}  // namespace cxr::data
