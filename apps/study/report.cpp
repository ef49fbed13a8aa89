// The study report (see report.h for the sections). The charts are SVG written by hand through a small helper
// (Chart): a plot area with linear axes whose ticks are "nice" numbers (steps of 1, 2 or 5 × 10^k), bars, error
// bars, points with labels, lines, CI bands and a legend. Colours come from a fixed palette (Okabe & Ito's
// colour-blind-safe set, yellow replaced by grey for print), assigned to summary-row labels in order of first
// appearance so that a model keeps its colour in every chart. Numbers print with 3 decimals ("0.812 [0.790,
// 0.833]"), nulls as an en dash "–", p-values below 0.001 as "<0.001".
// Marker classes the tests count: bar, errbar (one per bar with a CI), point, whisker (one per point and axis
// with a CI), line, band, legend-item; every chart is <svg class="chart" data-chart="KIND" data-test="TEST"
// [data-grouping="G"]>.
#include "apps/study/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include <unistd.h>

#include "data/image_io.h"
#include "data/loader.h"
#include "tensor/error.h"

namespace cxr::apps {

using nlohmann::json;
namespace fs = std::filesystem;

std::string base64_encode(const uint8_t* data, size_t size) {
    static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    size_t i = 0;
    // Each 24-bit group of three bytes becomes four 6-bit indices, most significant first.
    for (; i + 3 <= size; i += 3) {
        const uint32_t v = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8) | uint32_t(data[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    // A final group of one or two bytes is zero-padded to whole 6-bit indices and completed with '='.
    const size_t rest = size - i;
    if (rest == 1) {
        const uint32_t v = uint32_t(data[i]) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (rest == 2) {
        const uint32_t v = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string base64_encode(const std::vector<uint8_t>& bytes) { return base64_encode(bytes.data(), bytes.size()); }

std::string html_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

namespace {

const char* const kDash = "\u2013";  // shown for null values
const char* const kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999",
                                "#000000"};
constexpr int kPaletteSize = 8;
constexpr int kMaxImagePixels = 64;  // sample images are downscaled to at most this many pixels per side
constexpr int kMaxImagesPerCell = 4;

// ---------------------------------------------------------------------------------------------------------------
// Tolerant, type-checked access to the metrics JSON. A missing key or null is "absent"; a value of the wrong type
// is an error naming its path.

const json& null_json() {
    static const json n = nullptr;
    return n;
}

const char* type_name(const json& j) { return j.type_name(); }

const json& field(const json& obj, const std::string& key) {
    if (!obj.is_object()) return null_json();
    auto it = obj.find(key);
    return it == obj.end() ? null_json() : *it;
}

std::string join_path(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
}

std::optional<double> opt_num(const json& obj, const std::string& key, const std::string& where) {
    const json& v = field(obj, key);
    if (v.is_null()) return std::nullopt;
    CXR_CHECK(v.is_number(), "study report: ", join_path(where, key), " must be a number or null, got ",
              type_name(v));
    const double d = v.get<double>();
    if (!std::isfinite(d)) return std::nullopt;
    return d;
}

std::optional<std::pair<double, double>> opt_ci(const json& obj, const std::string& key, const std::string& where) {
    const json& v = field(obj, key);
    if (v.is_null()) return std::nullopt;
    CXR_CHECK(v.is_array() && v.size() == 2, "study report: ", join_path(where, key),
              " must be [lo, hi] or null, got ", v.is_array() ? std::to_string(v.size()) + " values" : type_name(v));
    for (const auto& e : v)
        CXR_CHECK(e.is_null() || e.is_number(), "study report: ", join_path(where, key),
                  " must hold numbers, got ", type_name(e));
    if (v[0].is_null() || v[1].is_null()) return std::nullopt;
    const double lo = v[0].get<double>(), hi = v[1].get<double>();
    if (!std::isfinite(lo) || !std::isfinite(hi)) return std::nullopt;
    return std::make_pair(lo, hi);
}

// Strings: null/missing is "", a number is printed, anything else is an error.
std::string opt_str(const json& obj, const std::string& key, const std::string& where) {
    const json& v = field(obj, key);
    if (v.is_null()) return "";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number() || v.is_boolean()) return v.dump();
    CXR_FAIL("study report: ", join_path(where, key), " must be a string, got ", type_name(v));
}

bool opt_bool(const json& obj, const std::string& key, const std::string& where) {
    const json& v = field(obj, key);
    if (v.is_null()) return false;
    CXR_CHECK(v.is_boolean(), "study report: ", join_path(where, key), " must be true or false, got ", type_name(v));
    return v.get<bool>();
}

const json& opt_array(const json& obj, const std::string& key, const std::string& where) {
    static const json empty = json::array();
    const json& v = field(obj, key);
    if (v.is_null()) return empty;
    CXR_CHECK(v.is_array(), "study report: ", join_path(where, key), " must be an array, got ", type_name(v));
    return v;
}

const json& opt_object(const json& obj, const std::string& key, const std::string& where) {
    static const json empty = json::object();
    const json& v = field(obj, key);
    if (v.is_null()) return empty;
    CXR_CHECK(v.is_object(), "study report: ", join_path(where, key), " must be an object, got ", type_name(v));
    return v;
}

// ---------------------------------------------------------------------------------------------------------------
// Number formatting.

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string s = buf;
    // "-0.000" reads as a sign error; print zero.
    if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
    return s;
}

std::string fmt3(std::optional<double> v) { return v ? fixed(*v, 3) : kDash; }

std::string fmt_ci(std::optional<double> v, std::optional<std::pair<double, double>> ci) {
    if (!v) return kDash;
    std::string s = fixed(*v, 3);
    if (ci) s += " [" + fixed(ci->first, 3) + ", " + fixed(ci->second, 3) + "]";
    return s;
}

std::string fmt_int(const json& obj, const std::string& key, const std::string& where) {
    const auto v = opt_num(obj, key, where);
    if (!v) return kDash;
    if (std::floor(*v) == *v && std::fabs(*v) < 1e15) return std::to_string((long long)*v);
    return fixed(*v, 3);
}

std::string fmt_p(std::optional<double> p) {
    if (!p) return kDash;
    if (*p < 0.001) return "&lt;0.001";
    return fixed(*p, 3);
}

std::string px(double v) { return fixed(v, 1); }

// Approximate text width in px for the 11 px sans-serif used in the charts.
double text_width(const std::string& s, double font_px = 11) {
    size_t glyphs = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++glyphs;  // count UTF-8 lead bytes only
    return glyphs * font_px * 0.62;
}

// ---------------------------------------------------------------------------------------------------------------
// The chart helper.

struct Axis {
    double lo = 0, hi = 1;
    double step = 0.1;
    std::vector<double> ticks;
};

// Nice linear axis covering [lo, hi]: the step is 1, 2 or 5 × 10^k giving about `target` intervals; the ends are
// snapped outward to multiples of the step, then clamped to [clamp_lo, clamp_hi].
Axis nice_axis(double lo, double hi, int target = 5, double clamp_lo = -INFINITY, double clamp_hi = INFINITY) {
    if (!(hi > lo)) {
        const double pad = lo == 0 ? 0.5 : std::fabs(lo) * 0.1;
        lo -= pad;
        hi += pad;
    }
    const double raw = (hi - lo) / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double norm = raw / mag;
    const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    Axis a;
    a.step = step;
    a.lo = std::max(std::floor(lo / step + 1e-9) * step, clamp_lo);
    a.hi = std::min(std::ceil(hi / step - 1e-9) * step, clamp_hi);
    if (!(a.hi > a.lo)) a.hi = a.lo + step;
    for (double t = std::ceil(a.lo / step - 1e-9) * step; t <= a.hi + step * 1e-6; t += step)
        a.ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
    return a;
}

std::string tick_label(double v, double step) {
    const int decimals = std::max(0, (int)-std::floor(std::log10(step) + 1e-9));
    return fixed(v, decimals);
}

struct LegendEntry {
    std::string label;
    std::string colour;
};

class Chart {
public:
    Chart(double width, double height, double left, double right, double top, double bottom)
        : width_(width), height_(height), left_(left), right_(right), top_(top), bottom_(bottom) {}

    void set_x(Axis a) { x_ = std::move(a); }
    void set_y(Axis a) { y_ = std::move(a); }
    const Axis& y() const { return y_; }
    double plot_left() const { return left_; }
    double plot_right() const { return width_ - right_; }
    double plot_top() const { return top_; }
    double plot_bottom() const { return height_ - bottom_; }

    double sx(double x) const {
        const double t = (x - x_.lo) / (x_.hi - x_.lo);
        return left_ + std::clamp(t, -0.02, 1.02) * (plot_right() - left_);
    }
    double sy(double y) const {
        const double t = (y - y_.lo) / (y_.hi - y_.lo);
        return plot_bottom() - std::clamp(t, -0.02, 1.02) * (plot_bottom() - top_);
    }

    // Frame, grid lines, tick labels and axis titles; numeric x ticks only when x_numeric.
    void axes(const std::string& x_title, const std::string& y_title, bool x_numeric) {
        os_ << "<g class=\"axes\">";
        for (double t : y_.ticks) {
            const double y = sy(t);
            os_ << "<line class=\"grid\" x1=\"" << px(left_) << "\" x2=\"" << px(plot_right()) << "\" y1=\"" << px(y)
                << "\" y2=\"" << px(y) << "\"/>";
            os_ << "<text class=\"tick\" x=\"" << px(left_ - 6) << "\" y=\"" << px(y + 4)
                << "\" text-anchor=\"end\">" << tick_label(t, y_.step) << "</text>";
        }
        if (x_numeric) {
            for (double t : x_.ticks) {
                const double x = sx(t);
                os_ << "<line class=\"grid\" x1=\"" << px(x) << "\" x2=\"" << px(x) << "\" y1=\"" << px(top_)
                    << "\" y2=\"" << px(plot_bottom()) << "\"/>";
                os_ << "<text class=\"tick\" x=\"" << px(x) << "\" y=\"" << px(plot_bottom() + 15)
                    << "\" text-anchor=\"middle\">" << tick_label(t, x_.step) << "</text>";
            }
        }
        os_ << "<rect class=\"frame\" x=\"" << px(left_) << "\" y=\"" << px(top_) << "\" width=\""
            << px(plot_right() - left_) << "\" height=\"" << px(plot_bottom() - top_) << "\"/>";
        if (!x_title.empty())
            os_ << "<text class=\"axis-title\" x=\"" << px((left_ + plot_right()) / 2) << "\" y=\""
                << px(height_ - 6) << "\" text-anchor=\"middle\">" << html_escape(x_title) << "</text>";
        if (!y_title.empty()) {
            const double cy = (top_ + plot_bottom()) / 2;
            os_ << "<text class=\"axis-title\" x=\"14\" y=\"" << px(cy) << "\" text-anchor=\"middle\" "
                << "transform=\"rotate(-90 14 " << px(cy) << ")\">" << html_escape(y_title) << "</text>";
        }
        os_ << "</g>";
    }

    // A category label under the plot at pixel x, rotated when long.
    void category_label(double x, const std::string& text, bool rotate) {
        const double y = plot_bottom() + 14;
        if (rotate)
            os_ << "<text class=\"category\" x=\"" << px(x) << "\" y=\"" << px(y) << "\" text-anchor=\"end\" "
                << "transform=\"rotate(-35 " << px(x) << " " << px(y) << ")\">" << html_escape(text) << "</text>";
        else
            os_ << "<text class=\"category\" x=\"" << px(x) << "\" y=\"" << px(y)
                << "\" text-anchor=\"middle\">" << html_escape(text) << "</text>";
    }

    // A bar from the bottom of the y axis up to value, pixel x from x0 to x1.
    void bar(double x0, double x1, double value, const std::string& colour, const std::string& title) {
        const double top = sy(value), base = plot_bottom();
        os_ << "<rect class=\"bar\" x=\"" << px(x0) << "\" y=\"" << px(std::min(top, base)) << "\" width=\""
            << px(x1 - x0) << "\" height=\"" << px(std::fabs(base - top)) << "\" fill=\"" << colour << "\"><title>"
            << html_escape(title) << "</title></rect>";
    }

    // A vertical error bar at pixel x from lo to hi (data units) with caps of half-width cap.
    void error_bar(double x, double lo, double hi, double cap = 4) {
        const double y0 = sy(lo), y1 = sy(hi);
        os_ << "<path class=\"errbar\" d=\"M" << px(x) << " " << px(y0) << "V" << px(y1) << "M" << px(x - cap) << " "
            << px(y0) << "H" << px(x + cap) << "M" << px(x - cap) << " " << px(y1) << "H" << px(x + cap) << "\"/>";
    }

    void value_label(double x, double value_y, const std::string& text) {
        os_ << "<text class=\"value\" x=\"" << px(x) << "\" y=\"" << px(sy(value_y) - 4)
            << "\" text-anchor=\"middle\">" << html_escape(text) << "</text>";
    }

    // Whiskers of a point in data units: horizontal (x CI) and vertical (y CI).
    void whisker_x(double lo, double hi, double y, const std::string& colour) {
        const double py = sy(y);
        os_ << "<path class=\"whisker\" stroke=\"" << colour << "\" d=\"M" << px(sx(lo)) << " " << px(py) << "H"
            << px(sx(hi)) << "M" << px(sx(lo)) << " " << px(py - 3) << "V" << px(py + 3) << "M" << px(sx(hi)) << " "
            << px(py - 3) << "V" << px(py + 3) << "\"/>";
    }
    void whisker_y(double x, double lo, double hi, const std::string& colour) {
        const double p = sx(x);
        os_ << "<path class=\"whisker\" stroke=\"" << colour << "\" d=\"M" << px(p) << " " << px(sy(lo)) << "V"
            << px(sy(hi)) << "M" << px(p - 3) << " " << px(sy(lo)) << "H" << px(p + 3) << "M" << px(p - 3) << " "
            << px(sy(hi)) << "H" << px(p + 3) << "\"/>";
    }

    void point(double x, double y, const std::string& colour, const std::string& label, const std::string& title) {
        const double cx = sx(x), cy = sy(y);
        os_ << "<circle class=\"point\" cx=\"" << px(cx) << "\" cy=\"" << px(cy) << "\" r=\"4\" fill=\"" << colour
            << "\"><title>" << html_escape(title) << "</title></circle>";
        // Labels of points in the right half of the plot go to their left so that they stay inside the chart.
        const bool left = cx > (left_ + plot_right()) / 2;
        if (!label.empty())
            os_ << "<text class=\"point-label\" x=\"" << px(left ? cx - 6 : cx + 6) << "\" y=\"" << px(cy - 6)
                << "\" text-anchor=\"" << (left ? "end" : "start") << "\">" << html_escape(label) << "</text>";
    }

    // A point label at pixel (x, y) with the given text-anchor ("start" or "end").
    void point_label(double x, double y, const char* anchor, const std::string& text, const std::string& colour) {
        os_ << "<text class=\"point-label\" x=\"" << px(x) << "\" y=\"" << px(y) << "\" text-anchor=\"" << anchor
            << "\" style=\"fill:" << colour << "\">" << html_escape(text) << "</text>";
    }
    double width() const { return width_; }

    void line(const std::vector<std::pair<double, double>>& pts, const std::string& colour) {
        os_ << "<polyline class=\"line\" stroke=\"" << colour << "\" points=\"";
        for (size_t i = 0; i < pts.size(); ++i)
            os_ << (i ? " " : "") << px(sx(pts[i].first)) << "," << px(sy(pts[i].second));
        os_ << "\"/>";
    }

    // A CI band: the polygon along the upper bounds left to right, then the lower bounds back.
    void band(const std::vector<double>& xs, const std::vector<double>& lo, const std::vector<double>& hi,
              const std::string& colour) {
        os_ << "<polygon class=\"band\" fill=\"" << colour << "\" points=\"";
        for (size_t i = 0; i < xs.size(); ++i) os_ << (i ? " " : "") << px(sx(xs[i])) << "," << px(sy(hi[i]));
        for (size_t i = xs.size(); i-- > 0;) os_ << " " << px(sx(xs[i])) << "," << px(sy(lo[i]));
        os_ << "\"/>";
    }

    // The legend in the right margin, one swatch and label per entry.
    void legend(const std::vector<LegendEntry>& entries) {
        double y = top_ + 4;
        const double x = plot_right() + 12;
        os_ << "<g class=\"legend\">";
        for (const auto& e : entries) {
            os_ << "<g class=\"legend-item\"><rect x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\"10\" "
                << "height=\"10\" fill=\"" << e.colour << "\"/><text x=\"" << px(x + 15) << "\" y=\"" << px(y + 9)
                << "\">" << html_escape(e.label) << "</text></g>";
            y += 16;
        }
        os_ << "</g>";
    }

    void note(const std::string& text) {
        os_ << "<text class=\"note\" x=\"" << px((left_ + plot_right()) / 2) << "\" y=\""
            << px((top_ + plot_bottom()) / 2) << "\" text-anchor=\"middle\">" << html_escape(text) << "</text>";
    }

    std::string svg(const std::string& kind, const std::string& test, const std::string& grouping,
                    const std::string& aria) const {
        std::ostringstream s;
        s << "<svg class=\"chart\" data-chart=\"" << kind << "\" data-test=\"" << html_escape(test) << "\"";
        if (!grouping.empty()) s << " data-grouping=\"" << html_escape(grouping) << "\"";
        s << " xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(width_) << "\" height=\"" << px(height_)
          << "\" viewBox=\"0 0 " << px(width_) << " " << px(height_) << "\" role=\"img\" aria-label=\""
          << html_escape(aria) << "\">" << os_.str() << "</svg>";
        return s.str();
    }

private:
    double width_, height_, left_, right_, top_, bottom_;
    Axis x_, y_;
    std::ostringstream os_;
};

// ---------------------------------------------------------------------------------------------------------------
// The study's content, read once.

struct Gaps {
    std::optional<double> auroc_gap, underdiagnosis_gap;
    std::optional<std::pair<double, double>> auroc_gap_ci, underdiagnosis_gap_ci;
    std::vector<std::pair<std::string, std::pair<std::optional<double>, std::optional<double>>>> subgroups;  // n, auroc
};

struct Row {
    std::string strategy, kind, variant, label, test;
    const json* raw = nullptr;
    std::string where;
    std::optional<double> auroc, auprc, diff;
    std::optional<std::pair<double, double>> auroc_ci, auprc_ci, diff_ci;
    std::map<std::string, Gaps> fairness;
    std::map<std::string, std::optional<double>> delong_p;
};

struct Study {
    std::vector<std::string> test_names;
    std::map<std::string, bool> in_distribution;
    std::map<std::string, std::string> test_description;
    std::map<std::string, std::string> test_n;
    std::vector<std::string> groupings;
    std::vector<std::string> labels;
    std::vector<Row> rows;
    std::map<std::string, std::string> colour_of;  // by row label
    std::vector<std::string> colour_order;
};

void add_unique(std::vector<std::string>& v, const std::string& s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

Study read_study(const json& m) {
    Study st;
    const json& tests = opt_array(m, "tests", "");
    for (size_t i = 0; i < tests.size(); ++i) {
        const std::string where = "tests[" + std::to_string(i) + "]";
        CXR_CHECK(tests[i].is_object(), "study report: ", where, " must be an object, got ", type_name(tests[i]));
        const std::string name = opt_str(tests[i], "name", where);
        add_unique(st.test_names, name);
        st.in_distribution[name] = opt_bool(tests[i], "in_distribution", where);
        st.test_description[name] = opt_str(tests[i], "description", where);
        st.test_n[name] = fmt_int(tests[i], "n", where);
    }
    const json& groupings = opt_array(m, "groupings", "");
    for (size_t i = 0; i < groupings.size(); ++i) {
        CXR_CHECK(groupings[i].is_string(), "study report: groupings[", i, "] must be a string, got ",
                  type_name(groupings[i]));
        add_unique(st.groupings, groupings[i].get<std::string>());
    }
    const json& labels = opt_array(m, "labels", "");
    for (size_t i = 0; i < labels.size(); ++i) {
        CXR_CHECK(labels[i].is_string(), "study report: labels[", i, "] must be a string, got ",
                  type_name(labels[i]));
        add_unique(st.labels, labels[i].get<std::string>());
    }
    const json& summary = opt_array(m, "summary", "");
    for (size_t i = 0; i < summary.size(); ++i) {
        const std::string where = "summary[" + std::to_string(i) + "]";
        const json& s = summary[i];
        CXR_CHECK(s.is_object(), "study report: ", where, " must be an object, got ", type_name(s));
        Row r;
        r.raw = &s;
        r.where = where;
        r.strategy = opt_str(s, "strategy", where);
        r.kind = opt_str(s, "kind", where);
        r.variant = opt_str(s, "variant", where);
        r.label = opt_str(s, "label", where);
        if (r.label.empty()) r.label = r.variant.empty() ? r.strategy : r.strategy + " " + r.variant;
        r.test = opt_str(s, "test", where);
        r.auroc = opt_num(s, "macro_auroc", where);
        r.auroc_ci = opt_ci(s, "macro_auroc_ci", where);
        r.auprc = opt_num(s, "macro_auprc", where);
        r.auprc_ci = opt_ci(s, "macro_auprc_ci", where);
        r.diff = opt_num(s, "macro_auroc_difference", where);
        r.diff_ci = opt_ci(s, "macro_auroc_difference_ci", where);
        opt_num(s, "real_images", where);
        opt_num(s, "synthetic_images", where);
        opt_num(s, "seeds", where);
        const json& fair = opt_object(s, "fairness", where);
        for (auto it = fair.begin(); it != fair.end(); ++it) {
            const std::string fw = where + ".fairness." + it.key();
            CXR_CHECK(it->is_object() || it->is_null(), "study report: ", fw, " must be an object, got ",
                      type_name(*it));
            Gaps g;
            g.auroc_gap = opt_num(*it, "auroc_gap", fw);
            g.auroc_gap_ci = opt_ci(*it, "auroc_gap_ci", fw);
            g.underdiagnosis_gap = opt_num(*it, "underdiagnosis_gap", fw);
            g.underdiagnosis_gap_ci = opt_ci(*it, "underdiagnosis_gap_ci", fw);
            const json& subs = opt_object(*it, "subgroups", fw);
            for (auto sg = subs.begin(); sg != subs.end(); ++sg) {
                const std::string sw = fw + ".subgroups." + sg.key();
                CXR_CHECK(sg->is_object() || sg->is_null(), "study report: ", sw, " must be an object, got ",
                          type_name(*sg));
                g.subgroups.push_back({sg.key(), {opt_num(*sg, "n", sw), opt_num(*sg, "auroc", sw)}});
            }
            r.fairness[it.key()] = std::move(g);
            add_unique(st.groupings, it.key());
        }
        const json& dp = opt_object(s, "delong_p", where);
        for (auto it = dp.begin(); it != dp.end(); ++it) {
            r.delong_p[it.key()] = opt_num(dp, it.key(), where + ".delong_p");
            add_unique(st.labels, it.key());
        }
        add_unique(st.test_names, r.test);
        if (!st.colour_of.count(r.label)) {
            st.colour_of[r.label] = kPalette[st.colour_order.size() % kPaletteSize];
            st.colour_order.push_back(r.label);
        }
        st.rows.push_back(std::move(r));
    }
    return st;
}

std::vector<const Row*> rows_of_test(const Study& st, const std::string& test) {
    std::vector<const Row*> out;
    for (const auto& r : st.rows)
        if (r.test == test) out.push_back(&r);
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Charts.

double max_label_width(const std::vector<std::string>& labels) {
    double w = 0;
    for (const auto& l : labels) w = std::max(w, text_width(l));
    return w;
}

// Macro AUROC or AUPRC bars with CI error bars, one bar per summary row of the test.
std::string metric_bars(const Study& st, const std::string& test, bool auprc) {
    const auto rows = rows_of_test(st, test);
    std::vector<std::string> names;
    double lo = INFINITY, hi = -INFINITY;
    for (const Row* r : rows) {
        names.push_back(r->label);
        const auto v = auprc ? r->auprc : r->auroc;
        const auto ci = auprc ? r->auprc_ci : r->auroc_ci;
        if (v) lo = std::min(lo, *v), hi = std::max(hi, *v);
        if (ci) lo = std::min(lo, ci->first), hi = std::max(hi, ci->second);
    }
    const double slot = 56;
    const double label_w = max_label_width(names);
    const bool rotate = label_w > slot - 6;
    const double bottom = 36 + (rotate ? label_w * 0.6 + 10 : 14);
    const double width = 64 + 16 + std::max(160.0, slot * rows.size());
    Chart c(width, 230 + bottom, 64, 16, 14, bottom);
    // The bars start at the axis floor; AUROC floors near chance level, AUPRC may go down to 0.
    if (!std::isfinite(lo)) lo = auprc ? 0 : 0.5, hi = 1;
    const double span = std::max(hi - lo, 0.05);
    c.set_y(nice_axis(std::min(lo - 0.25 * span, auprc ? lo : 0.5), std::min(hi + 0.1 * span, 1.0), 5, 0, 1));
    Axis x;
    x.lo = 0;
    x.hi = std::max<double>(1, rows.size());
    c.set_x(x);
    const std::string metric = auprc ? "macro AUPRC" : "macro AUROC";
    c.axes("", metric, false);
    for (size_t i = 0; i < rows.size(); ++i) {
        const Row* r = rows[i];
        const double x0 = c.plot_left() + slot * i + 8, x1 = x0 + slot - 16, xm = (x0 + x1) / 2;
        const auto v = auprc ? r->auprc : r->auroc;
        const auto ci = auprc ? r->auprc_ci : r->auroc_ci;
        if (v) {
            c.bar(x0, x1, *v, st.colour_of.at(r->label), r->label + ": " + metric + " " + fmt_ci(v, ci));
            if (ci) c.error_bar(xm, ci->first, ci->second);
            c.value_label(xm, ci ? std::max(ci->second, *v) : *v, fixed(*v, 3));
        } else {
            c.value_label(xm, c.y().lo, kDash);
        }
        c.category_label(rotate ? xm + 4 : xm, r->label, rotate);
    }
    if (rows.empty()) c.note("no summary rows for this test set");
    return c.svg(auprc ? "auprc" : "auroc", test, "", metric + " on " + test);
}

// Gap (fairness or underdiagnosis) vs macro AUROC, one labelled point per summary row with CI whiskers.
std::string gap_scatter(const Study& st, const std::string& test, const std::string& grouping, bool underdiagnosis,
                        int* skipped) {
    const auto rows = rows_of_test(st, test);
    struct P {
        const Row* r;
        double x, y;
        std::optional<std::pair<double, double>> xci, yci;
    };
    std::vector<P> pts;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    *skipped = 0;
    for (const Row* r : rows) {
        auto it = r->fairness.find(grouping);
        std::optional<double> y;
        std::optional<std::pair<double, double>> yci;
        if (it != r->fairness.end()) {
            y = underdiagnosis ? it->second.underdiagnosis_gap : it->second.auroc_gap;
            yci = underdiagnosis ? it->second.underdiagnosis_gap_ci : it->second.auroc_gap_ci;
        }
        if (!r->auroc || !y) {
            ++*skipped;
            continue;
        }
        pts.push_back({r, *r->auroc, *y, r->auroc_ci, yci});
        xlo = std::min(xlo, *r->auroc), xhi = std::max(xhi, *r->auroc);
        ylo = std::min(ylo, *y), yhi = std::max(yhi, *y);
        if (r->auroc_ci) xlo = std::min(xlo, r->auroc_ci->first), xhi = std::max(xhi, r->auroc_ci->second);
        if (yci) ylo = std::min(ylo, yci->first), yhi = std::max(yhi, yci->second);
    }
    Chart c(460, 300, 64, 16, 14, 44);
    if (pts.empty()) xlo = 0.5, xhi = 1, ylo = 0, yhi = 0.2;
    const double xs = std::max(xhi - xlo, 0.02), ys = std::max(yhi - ylo, 0.02);
    c.set_x(nice_axis(xlo - 0.1 * xs, xhi + 0.1 * xs, 5, 0, 1));
    c.set_y(nice_axis(std::min(0.0, ylo - 0.1 * ys), yhi + 0.15 * ys, 5));
    const std::string y_title = underdiagnosis ? "underdiagnosis gap (" + grouping + ")"
                                               : "AUROC gap (" + grouping + ")";
    c.axes("macro AUROC", y_title, true);
    for (const auto& p : pts) {
        const std::string& colour = st.colour_of.at(p.r->label);
        if (p.xci) c.whisker_x(p.xci->first, p.xci->second, p.y, colour);
        if (p.yci) c.whisker_y(p.x, p.yci->first, p.yci->second, colour);
        c.point(p.x, p.y, colour, "",
                p.r->label + ": macro AUROC " + fmt_ci(p.x, p.xci) + ", gap " + fmt_ci(p.y, p.yci));
    }
    // Labels placed greedily: the first of eight positions around the point whose box stays inside the chart and
    // overlaps no label placed before (else the first position inside the chart).
    struct Box {
        double x0, y0, x1, y1;
    };
    std::vector<Box> placed;
    for (const auto& p : pts) {
        const double cx = c.sx(p.x), cy = c.sy(p.y), w = text_width(p.r->label), h = 11;
        const double dys[] = {-6, 14, -18, 26};
        std::optional<std::tuple<double, double, bool, Box>> chosen, fallback;
        for (double dy : dys) {
            for (bool right_side : {true, false}) {
                const double x = right_side ? cx + 6 : cx - 6, y = cy + dy;
                const Box b{right_side ? x : x - w, y - h + 2, right_side ? x + w : x, y + 2};
                if (b.x0 < 0 || b.x1 > c.width()) continue;
                if (!fallback) fallback = std::make_tuple(x, y, right_side, b);
                bool overlaps = false;
                for (const Box& o : placed)
                    overlaps = overlaps || (b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1);
                if (!overlaps) {
                    chosen = std::make_tuple(x, y, right_side, b);
                    break;
                }
            }
            if (chosen) break;
        }
        if (!chosen) chosen = fallback;
        if (!chosen) chosen = std::make_tuple(cx + 6, cy - 6, true, Box{cx, cy, cx, cy});
        const auto& [x, y, right_side, box] = *chosen;
        c.point_label(x, y, right_side ? "start" : "end", p.r->label, st.colour_of.at(p.r->label));
        placed.push_back(box);
    }
    if (pts.empty()) c.note("no values");
    return c.svg(underdiagnosis ? "underdiagnosis-vs-auroc" : "gap-vs-auroc", test, grouping,
                 y_title + " vs macro AUROC on " + test);
}

// Subgroup AUROC: groups of bars (one group per subgroup, one bar per summary row), legend by row.
std::string subgroup_bars(const Study& st, const std::string& test, const std::string& grouping) {
    const auto rows = rows_of_test(st, test);
    std::vector<std::string> subgroups;
    std::vector<const Row*> series;
    double lo = INFINITY, hi = -INFINITY;
    for (const Row* r : rows) {
        auto it = r->fairness.find(grouping);
        if (it == r->fairness.end()) continue;
        series.push_back(r);
        for (const auto& sg : it->second.subgroups) {
            add_unique(subgroups, sg.first);
            if (sg.second.second) lo = std::min(lo, *sg.second.second), hi = std::max(hi, *sg.second.second);
        }
    }
    const double bar_w = 12, gap = 14;
    const double group_w = std::max<double>(1, series.size()) * bar_w + gap;
    std::vector<LegendEntry> legend;
    for (const Row* r : series) legend.push_back({r->label, st.colour_of.at(r->label)});
    double legend_w = 0;
    for (const auto& e : legend) legend_w = std::max(legend_w, text_width(e.label) + 30);
    const double label_w = max_label_width(subgroups);
    const bool rotate = label_w > group_w - 4;
    const double bottom = 20 + (rotate ? label_w * 0.6 + 10 : 14);
    const double right = 16 + legend_w;
    const double width = 64 + right + std::max(160.0, group_w * subgroups.size());
    Chart c(width, std::max(220.0, 16.0 * legend.size() + 30) + bottom, 64, right, 14, bottom);
    if (!std::isfinite(lo)) lo = 0.5, hi = 1;
    const double span = std::max(hi - lo, 0.05);
    c.set_y(nice_axis(std::min(lo - 0.25 * span, 0.5), std::min(hi + 0.1 * span, 1.0), 5, 0, 1));
    c.axes("", "AUROC", false);
    for (size_t g = 0; g < subgroups.size(); ++g) {
        const double gx = c.plot_left() + group_w * g + gap / 2;
        for (size_t k = 0; k < series.size(); ++k) {
            const auto& subs = series[k]->fairness.at(grouping).subgroups;
            auto it = std::find_if(subs.begin(), subs.end(), [&](const auto& s) { return s.first == subgroups[g]; });
            if (it == subs.end() || !it->second.second) continue;
            const double x0 = gx + bar_w * k;
            std::string title = series[k]->label + ", " + subgroups[g] + ": AUROC " + fixed(*it->second.second, 3);
            if (it->second.first) title += " (n = " + fmt_int(json{{"n", *it->second.first}}, "n", "") + ")";
            c.bar(x0, x0 + bar_w - 1, *it->second.second, st.colour_of.at(series[k]->label), title);
        }
        const double xm = gx + bar_w * series.size() / 2;
        c.category_label(rotate ? xm + 4 : xm, subgroups[g], rotate);
    }
    c.legend(legend);
    if (subgroups.empty()) c.note("no subgroup values");
    return c.svg("subgroups", test, grouping, "subgroup AUROC by " + grouping + " on " + test);
}

// The real-data sweep: one line per (strategy, test) with a CI band where every point has a CI.
std::string sweep_chart(const Study& st, const json& sweep) {
    struct Series {
        std::string label;
        std::vector<double> x, y, lo, hi;
        bool full_ci = true;
    };
    std::vector<Series> series;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t i = 0; i < sweep.size(); ++i) {
        const std::string where = "sweep[" + std::to_string(i) + "]";
        CXR_CHECK(sweep[i].is_object(), "study report: ", where, " must be an object, got ", type_name(sweep[i]));
        Series s;
        s.label = opt_str(sweep[i], "strategy", where) + " \u2014 " + opt_str(sweep[i], "test", where);
        const json& points = opt_array(sweep[i], "points", where);
        std::vector<std::tuple<double, double, std::optional<std::pair<double, double>>>> pts;
        for (size_t k = 0; k < points.size(); ++k) {
            const std::string pw = where + ".points[" + std::to_string(k) + "]";
            CXR_CHECK(points[k].is_object(), "study report: ", pw, " must be an object, got ",
                      type_name(points[k]));
            const auto x = opt_num(points[k], "real_images", pw);
            const auto y = opt_num(points[k], "macro_auroc", pw);
            const auto ci = opt_ci(points[k], "macro_auroc_ci", pw);
            if (x && y) pts.emplace_back(*x, *y, ci);
        }
        std::sort(pts.begin(), pts.end(),
                  [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
        for (const auto& [x, y, ci] : pts) {
            s.x.push_back(x);
            s.y.push_back(y);
            s.lo.push_back(ci ? ci->first : y);
            s.hi.push_back(ci ? ci->second : y);
            s.full_ci = s.full_ci && ci.has_value();
            xlo = std::min(xlo, x), xhi = std::max(xhi, x);
            ylo = std::min(ylo, ci ? ci->first : y), yhi = std::max(yhi, ci ? ci->second : y);
        }
        series.push_back(std::move(s));
    }
    std::vector<LegendEntry> legend;
    double legend_w = 0;
    for (size_t i = 0; i < series.size(); ++i) {
        legend.push_back({series[i].label, kPalette[i % kPaletteSize]});
        legend_w = std::max(legend_w, text_width(series[i].label) + 30);
    }
    Chart c(480 + legend_w, std::max(300.0, 16.0 * legend.size() + 60), 64, 16 + legend_w, 14, 44);
    if (!std::isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0.5, yhi = 1;
    const double ys = std::max(yhi - ylo, 0.02);
    c.set_x(nice_axis(std::min(0.0, xlo), xhi, 5));
    c.set_y(nice_axis(ylo - 0.1 * ys, std::min(yhi + 0.1 * ys, 1.0), 5, 0, 1));
    c.axes("real images used for fine-tuning", "macro AUROC", true);
    (void)st;
    for (size_t i = 0; i < series.size(); ++i) {
        const Series& s = series[i];
        const std::string colour = kPalette[i % kPaletteSize];
        if (s.full_ci && !s.x.empty()) c.band(s.x, s.lo, s.hi, colour);
        std::vector<std::pair<double, double>> pts;
        for (size_t k = 0; k < s.x.size(); ++k) pts.push_back({s.x[k], s.y[k]});
        if (!pts.empty()) c.line(pts, colour);
        for (size_t k = 0; k < s.x.size(); ++k) {
            std::optional<std::pair<double, double>> ci;
            if (s.lo[k] != s.y[k] || s.hi[k] != s.y[k]) ci = std::make_pair(s.lo[k], s.hi[k]);
            c.point(s.x[k], s.y[k], colour, "",
                    s.label + ", " + fixed(s.x[k], 0) + " real images: macro AUROC " + fmt_ci(s.y[k], ci));
        }
    }
    c.legend(legend);
    return c.svg("sweep", "", "", "macro AUROC vs real images used for fine-tuning");
}

// ---------------------------------------------------------------------------------------------------------------
// Image grids.

struct ImageCell {
    std::string html;
    std::string note;  // non-empty when the image could not be shown
};

ImageCell image_cell(const std::string& path, const std::string& base_dir, const std::string& alt) {
    fs::path p(path);
    if (p.is_relative() && !base_dir.empty() && fs::exists(fs::path(base_dir) / p)) p = fs::path(base_dir) / p;
    ImageCell cell;
    const auto placeholder = [&](const std::string& why) {
        cell.html = "<div class=\"placeholder\" title=\"" + html_escape(path) + "\">image<br>missing</div>";
        cell.note = path + ": " + why;
    };
    std::error_code ec;
    if (path.empty()) {
        placeholder("no path given");
        return cell;
    }
    if (!fs::is_regular_file(p, ec)) {
        placeholder("file not found");
        return cell;
    }
    try {
        tensor::Tensor img = data::read_image(p.string());  // [C, H, W] f32 in [0, 1]
        const int64_t h = img.size(1), w = img.size(2);
        if (std::max(h, w) > kMaxImagePixels) {
            const double s = double(kMaxImagePixels) / double(std::max(h, w));
            const int oh = std::max(1, (int)std::lround(h * s)), ow = std::max(1, (int)std::lround(w * s));
            img = data::resize_image(img, oh, ow);  // [C, oh, ow]
        }
        const std::vector<uint8_t> png = data::encode_png(img, 8);
        cell.html = "<img src=\"data:image/png;base64," + base64_encode(png) + "\" width=\"" +
                    std::to_string(img.size(2)) + "\" height=\"" + std::to_string(img.size(1)) + "\" alt=\"" +
                    html_escape(alt) + "\" title=\"" + html_escape(path) + "\">";
    } catch (const cxr::Error& e) {
        placeholder(std::string("unreadable (") + e.what() + ")");
    }
    return cell;
}

std::string demographic_of(const json& s, const std::string& where) {
    std::string sex = opt_str(s, "sex", where), race = opt_str(s, "race", where);
    if (sex.empty()) sex = "?";
    if (race.empty()) race = "unknown";
    return sex + " / " + race;
}

std::string image_grid(const json& samples, const std::string& which, const std::string& base_dir) {
    const json& list = opt_array(samples, which, "samples");
    std::ostringstream os;
    if (list.empty()) {
        os << "<p class=\"muted\">No " << which << " samples listed.</p>";
        return os.str();
    }
    std::vector<std::string> findings, demographics;
    std::map<std::pair<std::string, std::string>, std::vector<size_t>> cells;
    for (size_t i = 0; i < list.size(); ++i) {
        const std::string where = "samples." + which + "[" + std::to_string(i) + "]";
        CXR_CHECK(list[i].is_object(), "study report: ", where, " must be an object, got ", type_name(list[i]));
        std::string finding = opt_str(list[i], "finding", where);
        if (finding.empty()) finding = "(no finding given)";
        const std::string demo = demographic_of(list[i], where);
        opt_num(list[i], "age", where);
        add_unique(findings, finding);
        add_unique(demographics, demo);
        cells[{finding, demo}].push_back(i);
    }
    std::vector<std::string> notes;
    os << "<table class=\"grid\"><thead><tr><th>finding \\ sex / race</th>";
    for (const auto& d : demographics) os << "<th>" << html_escape(d) << "</th>";
    os << "</tr></thead><tbody>";
    for (const auto& f : findings) {
        os << "<tr><th>" << html_escape(f) << "</th>";
        for (const auto& d : demographics) {
            os << "<td>";
            auto it = cells.find({f, d});
            if (it != cells.end()) {
                for (size_t k = 0; k < it->second.size() && k < (size_t)kMaxImagesPerCell; ++k) {
                    const size_t i = it->second[k];
                    const std::string where = "samples." + which + "[" + std::to_string(i) + "]";
                    std::string alt = which + " " + f + ", " + d;
                    if (const auto age = opt_num(list[i], "age", where)) alt += ", age " + fixed(*age, 0);
                    ImageCell c = image_cell(opt_str(list[i], "path", where), base_dir, alt);
                    os << c.html;
                    if (!c.note.empty()) notes.push_back(c.note);
                }
                if (it->second.size() > (size_t)kMaxImagesPerCell)
                    os << "<div class=\"muted\">+" << it->second.size() - kMaxImagesPerCell << " more</div>";
            }
            os << "</td>";
        }
        os << "</tr>";
    }
    os << "</tbody></table>";
    if (!notes.empty()) {
        os << "<p class=\"note missing-note\">" << notes.size() << " image(s) could not be shown:</p>"
           << "<ul class=\"note\">";
        for (const auto& n : notes) os << "<li>" << html_escape(n) << "</li>";
        os << "</ul>";
    }
    return os.str();
}

// ---------------------------------------------------------------------------------------------------------------
// Tables.

std::string summary_table(const Study& st) {
    std::ostringstream os;
    os << "<table class=\"numbers\" id=\"summary-table\"><thead><tr><th>test</th><th>model</th><th>strategy</th>"
          "<th>kind</th><th>variant</th><th>real</th><th>synthetic</th><th>seeds</th><th>macro AUROC [95% CI]</th>"
          "<th>macro AUPRC [95% CI]</th><th>&#916; macro AUROC vs real only</th>";
    for (const auto& g : st.groupings)
        os << "<th>AUROC gap (" << html_escape(g) << ")</th><th>underdiagnosis gap (" << html_escape(g) << ")</th>";
    os << "</tr></thead><tbody>";
    for (const auto& r : st.rows) {
        os << "<tr><td>" << html_escape(r.test) << "</td><td>" << html_escape(r.label) << "</td><td>"
           << html_escape(r.strategy) << "</td><td>" << html_escape(r.kind) << "</td><td>" << html_escape(r.variant)
           << "</td><td class=\"num\">" << fmt_int(*r.raw, "real_images", r.where) << "</td><td class=\"num\">"
           << fmt_int(*r.raw, "synthetic_images", r.where) << "</td><td class=\"num\">"
           << fmt_int(*r.raw, "seeds", r.where) << "</td><td class=\"num\">" << fmt_ci(r.auroc, r.auroc_ci)
           << "</td><td class=\"num\">" << fmt_ci(r.auprc, r.auprc_ci) << "</td><td class=\"num\">"
           << fmt_ci(r.diff, r.diff_ci) << "</td>";
        for (const auto& g : st.groupings) {
            auto it = r.fairness.find(g);
            if (it == r.fairness.end()) {
                os << "<td class=\"num\">" << kDash << "</td><td class=\"num\">" << kDash << "</td>";
                continue;
            }
            os << "<td class=\"num\">" << fmt_ci(it->second.auroc_gap, it->second.auroc_gap_ci)
               << "</td><td class=\"num\">" << fmt_ci(it->second.underdiagnosis_gap, it->second.underdiagnosis_gap_ci)
               << "</td>";
        }
        os << "</tr>";
    }
    os << "</tbody></table>";
    return os.str();
}

std::string delong_table(const Study& st) {
    std::vector<const Row*> rows;
    for (const auto& r : st.rows)
        if (!r.delong_p.empty()) rows.push_back(&r);
    if (rows.empty()) return "<p class=\"muted\">No DeLong comparisons in this study.</p>";
    std::ostringstream os;
    os << "<table class=\"numbers\" id=\"delong-table\"><thead><tr><th>test</th><th>model</th>";
    for (const auto& l : st.labels) os << "<th>" << html_escape(l) << "</th>";
    os << "</tr></thead><tbody>";
    for (const Row* r : rows) {
        os << "<tr><td>" << html_escape(r->test) << "</td><td>" << html_escape(r->label) << "</td>";
        for (const auto& l : st.labels) {
            auto it = r->delong_p.find(l);
            os << "<td class=\"num\">" << fmt_p(it == r->delong_p.end() ? std::nullopt : it->second) << "</td>";
        }
        os << "</tr>";
    }
    os << "</tbody></table>";
    return os.str();
}

std::string subgroup_table(const Study& st, const std::string& grouping) {
    std::vector<std::string> subgroups;
    for (const auto& r : st.rows) {
        auto it = r.fairness.find(grouping);
        if (it != r.fairness.end())
            for (const auto& sg : it->second.subgroups) add_unique(subgroups, sg.first);
    }
    if (subgroups.empty()) return "";
    std::ostringstream os;
    os << "<h3>Subgroup AUROC by " << html_escape(grouping) << " (n in parentheses)</h3>"
       << "<table class=\"numbers subgroup-table\"><thead><tr><th>test</th><th>model</th>";
    for (const auto& s : subgroups) os << "<th>" << html_escape(s) << "</th>";
    os << "</tr></thead><tbody>";
    for (const auto& r : st.rows) {
        auto it = r.fairness.find(grouping);
        if (it == r.fairness.end()) continue;
        os << "<tr><td>" << html_escape(r.test) << "</td><td>" << html_escape(r.label) << "</td>";
        for (const auto& s : subgroups) {
            const auto& subs = it->second.subgroups;
            auto sg = std::find_if(subs.begin(), subs.end(), [&](const auto& e) { return e.first == s; });
            os << "<td class=\"num\">";
            if (sg == subs.end()) {
                os << kDash;
            } else {
                os << fmt3(sg->second.second);
                if (sg->second.first) os << " (" << fmt_int(json{{"n", *sg->second.first}}, "n", "") << ")";
            }
            os << "</td>";
        }
        os << "</tr>";
    }
    os << "</tbody></table>";
    return os.str();
}

std::string runs_table(const json& m, const std::vector<std::string>& test_names) {
    const json& runs = opt_array(m, "runs", "");
    if (runs.empty()) return "<p class=\"muted\">No runs listed.</p>";
    std::ostringstream os;
    os << "<table class=\"numbers\" id=\"runs-table\"><thead><tr><th>run</th><th>strategy</th><th>kind</th>"
          "<th>variant</th><th>seed</th><th>real</th><th>synthetic</th><th>best epoch</th>"
          "<th>validation macro AUROC</th><th>training time (s)</th>";
    for (const auto& t : test_names) os << "<th>macro AUROC, " << html_escape(t) << "</th>";
    os << "</tr></thead><tbody>";
    for (size_t i = 0; i < runs.size(); ++i) {
        const std::string where = "runs[" + std::to_string(i) + "]";
        const json& r = runs[i];
        CXR_CHECK(r.is_object(), "study report: ", where, " must be an object, got ", type_name(r));
        os << "<tr><td>" << html_escape(opt_str(r, "id", where)) << "</td><td>"
           << html_escape(opt_str(r, "strategy", where)) << "</td><td>" << html_escape(opt_str(r, "kind", where))
           << "</td><td>" << html_escape(opt_str(r, "variant", where)) << "</td><td class=\"num\">"
           << fmt_int(r, "seed", where) << "</td><td class=\"num\">" << fmt_int(r, "real_images", where)
           << "</td><td class=\"num\">" << fmt_int(r, "synthetic_images", where) << "</td><td class=\"num\">"
           << fmt_int(r, "best_epoch", where) << "</td><td class=\"num\">"
           << fmt3(opt_num(r, "valid_macro_auroc", where)) << "</td><td class=\"num\">";
        const auto secs = opt_num(r, "train_seconds", where);
        os << (secs ? fixed(*secs, 1) : kDash) << "</td>";
        const json& tests = opt_object(r, "tests", where);
        for (const auto& t : test_names) {
            const std::string tw = where + ".tests." + t;
            const json& macro = opt_object(field(tests, t), "macro", tw);
            os << "<td class=\"num\">"
               << fmt_ci(opt_num(macro, "auroc", tw + ".macro"), opt_ci(macro, "auroc_ci", tw + ".macro"))
               << "</td>";
        }
        os << "</tr>";
    }
    os << "</tbody></table>";
    return os.str();
}

const char* kStyle = R"css(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 14px; color: #222; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; border-bottom: 1px solid #ccc; margin-top: 32px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #555; } .muted { color: #777; }
.notice-stand-in { border: 2px solid #D55E00; background: #fff3e8; padding: 10px 14px; margin: 12px 0;
                   font-weight: bold; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; page-break-inside: avoid; break-inside: avoid; }
figcaption { font-size: 12px; color: #444; max-width: 460px; }
svg.chart { background: #fff; font-size: 11px; }
svg.chart .grid { stroke: #e3e3e3; stroke-width: 1; }
svg.chart .frame { fill: none; stroke: #444; stroke-width: 1; }
svg.chart .errbar { stroke: #222; stroke-width: 1.3; fill: none; }
svg.chart .whisker { stroke-width: 1.2; fill: none; }
svg.chart .line { fill: none; stroke-width: 2; }
svg.chart .band { opacity: 0.18; stroke: none; }
svg.chart .point { stroke: #fff; stroke-width: 1; }
svg.chart .value { font-size: 9px; fill: #333; }
svg.chart .axis-title { font-size: 12px; }
svg.chart text { fill: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.grid td { min-width: 68px; }
table.grid img { image-rendering: pixelated; margin: 1px; }
.placeholder { width: 64px; height: 64px; display: inline-flex; align-items: center; justify-content: center;
               text-align: center; background: repeating-linear-gradient(45deg, #eee, #eee 6px, #ddd 6px, #ddd 12px);
               color: #900; font-size: 10px; margin: 1px; }
.note { color: #900; font-size: 12px; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 8px; font-size: 11px; white-space: pre-wrap;
      word-break: break-all; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } table { page-break-inside: auto; }
               tr { page-break-inside: avoid; } }
)css";

std::string figure(const std::string& svg, const std::string& caption) {
    return "<figure>" + svg + "<figcaption>" + html_escape(caption) + "</figcaption></figure>";
}

}  // namespace

std::string study_report_html(const json& m, const std::string& base_dir) {
    CXR_CHECK(m.is_object(), "study report: the metrics must be a JSON object, got ", m.type_name());
    const json& format = field(m, "format");
    CXR_CHECK(format.is_string() && format.get<std::string>() == "cxr-study",
              "study report: \"format\" must be \"cxr-study\", got ", format.dump());
    const json& version = field(m, "version");
    CXR_CHECK(version.is_number_integer() && version.get<int64_t>() == 1,
              "study report: unsupported \"version\" ", version.dump(), " (this build reads version 1)");

    const json& study = opt_object(m, "study", "");
    const json& run = opt_object(study, "run", "study");
    const json& source = opt_object(study, "synthetic_source", "study");
    const Study st = read_study(m);
    const json& sweep = opt_array(m, "sweep", "");
    const json& samples = opt_object(m, "samples", "");

    std::string name = opt_str(study, "name", "study");
    if (name.empty()) name = "(unnamed study)";
    std::ostringstream os;
    os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << html_escape(name)
       << " \u2014 cxr study report</title><style>" << kStyle << "</style></head><body>\n";

    // 1. Header.
    os << "<h1>" << html_escape(name) << "</h1>\n<p class=\"meta\">created "
       << html_escape(opt_str(study, "created", "study")) << " &#183; git commit <code>"
       << html_escape(opt_str(run, "git_commit", "study.run")) << "</code> &#183; " << st.rows.size()
       << " summary rows, " << st.test_names.size() << " test sets</p>\n";
    os << "<p><b>Synthetic source:</b> " << html_escape(opt_str(source, "description", "study.synthetic_source"))
       << "</p>\n";
    if (opt_bool(source, "stand_in", "study.synthetic_source"))
        os << "<div class=\"notice-stand-in\" role=\"note\">Stand-in synthetic data: the &#8220;synthetic&#8221; "
              "images of this study are a second phantom draw, not generator output. Differences between the "
              "strategies here test the pipeline, not the value of generated images.</div>\n";
    if (!st.test_names.empty()) {
        os << "<ul class=\"tests\">";
        for (const auto& t : st.test_names) {
            os << "<li><b>" << html_escape(t) << "</b>";
            if (st.in_distribution.count(t))
                os << " (" << (st.in_distribution.at(t) ? "in-distribution" : "out-of-distribution") << ", n = "
                   << st.test_n.at(t) << ")";
            if (st.test_description.count(t) && !st.test_description.at(t).empty())
                os << ": " << html_escape(st.test_description.at(t));
            os << "</li>";
        }
        os << "</ul>\n";
    }

    // 2. Macro AUROC / AUPRC bars.
    os << "<h2>Classification performance</h2>\n<p>Macro-averaged AUROC and AUPRC per model with 95% CI error "
          "bars (bootstrap over test images, pooled over seeds as in the summary).</p>\n";
    for (const auto& t : st.test_names) {
        os << "<h3>" << html_escape(t) << "</h3><div class=\"figures\">"
           << figure(metric_bars(st, t, false), "Macro AUROC on " + t) << figure(metric_bars(st, t, true),
                                                                                   "Macro AUPRC on " + t)
           << "</div>\n";
    }

    // 3. Fairness scatter plots.
    os << "<h2>Fairness vs performance</h2>\n<p>AUROC gap (largest minus smallest subgroup AUROC) and "
          "underdiagnosis gap (largest minus smallest subgroup false-positive rate of &#8220;No Finding&#8221;) "
          "against macro AUROC, one point per model with 95% CI whiskers (RoentGen-v2 figures 8 and 9). Lower "
          "and further right is better.</p>\n";
    for (const auto& t : st.test_names) {
        for (const auto& g : st.groupings) {
            int skipped_gap = 0, skipped_under = 0;
            const std::string a = gap_scatter(st, t, g, false, &skipped_gap);
            const std::string b = gap_scatter(st, t, g, true, &skipped_under);
            os << "<h3>" << html_escape(t) << " &#183; " << html_escape(g) << "</h3><div class=\"figures\">"
               << figure(a, "AUROC gap by " + g + " vs macro AUROC on " + t +
                                (skipped_gap ? " (" + std::to_string(skipped_gap) + " model(s) without values)" : ""))
               << figure(b, "Underdiagnosis gap by " + g + " vs macro AUROC on " + t +
                                (skipped_under ? " (" + std::to_string(skipped_under) + " model(s) without values)"
                                               : ""))
               << "</div>\n";
        }
    }

    // 4. Subgroup AUROC bars (in-distribution test sets; the first test set when none is marked).
    std::vector<std::string> id_tests;
    for (const auto& t : st.test_names)
        if (st.in_distribution.count(t) && st.in_distribution.at(t)) id_tests.push_back(t);
    if (id_tests.empty() && !st.test_names.empty()) id_tests.push_back(st.test_names.front());
    os << "<h2>Subgroup AUROC</h2>\n";
    for (const auto& t : id_tests) {
        os << "<h3>" << html_escape(t) << "</h3><div class=\"figures\">";
        for (const auto& g : st.groupings)
            os << figure(subgroup_bars(st, t, g), "Macro AUROC per " + g + " subgroup on " + t);
        os << "</div>\n";
    }

    // 5. Sweep.
    if (!sweep.empty()) {
        os << "<h2>Real-data sweep</h2>\n<p>Macro AUROC (95% CI band) against the number of real images used for "
              "fine-tuning, one line per strategy and test set.</p>\n"
           << figure(sweep_chart(st, sweep), "Macro AUROC vs real images used for fine-tuning") << "\n";
    }

    // 6. Image grids.
    os << "<h2>Samples</h2>\n<p>Rows by finding, columns by sex / race; images downscaled to at most "
       << kMaxImagePixels << " px.</p>\n<h3>Real</h3>\n"
       << image_grid(samples, "real", base_dir) << "\n<h3>Synthetic"
       << (opt_bool(source, "stand_in", "study.synthetic_source") ? " (stand-in: second phantom draw)" : "")
       << "</h3>\n"
       << image_grid(samples, "synthetic", base_dir) << "\n";

    // 7. Tables.
    os << "<h2>All numbers</h2>\n<p>Point estimates with 95% CIs, 3 decimals; " << kDash
       << " where a value is undefined.</p>\n"
       << summary_table(st) << "\n<h3>DeLong p-values vs the real-only baseline</h3>\n"
       << delong_table(st) << "\n";
    for (const auto& g : st.groupings) os << subgroup_table(st, g) << "\n";
    os << "<h3>Runs</h3>\n" << runs_table(m, st.test_names) << "\n";

    // 8. Config and provenance.
    os << "<h2>Configuration and provenance</h2>\n<h3>Resolved config</h3>\n<pre class=\"config\">"
       << html_escape(field(study, "config").dump(2)) << "</pre>\n<h3>Run record</h3>\n<pre class=\"provenance\">"
       << html_escape(run.dump(2)) << "</pre>\n</body></html>\n";
    return os.str();
}

void write_study_report(const json& metrics, const std::string& html_path) {
    const fs::path path(html_path);
    const std::string html = study_report_html(metrics, path.parent_path().string());
    // Temporary name beside the target, then rename: a failed write never leaves a half-written report.
    const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        CXR_CHECK(out.is_open(), "cannot write the study report: cannot open '", tmp.string(), "' for writing");
        out.write(html.data(), (std::streamsize)html.size());
        out.flush();
        if (!out.good()) {
            out.close();
            std::error_code ec;
            fs::remove(tmp, ec);
            CXR_FAIL("cannot write the study report '", tmp.string(), "' (disk full?)");
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
        std::error_code ec2;
        fs::remove(tmp, ec2);
        CXR_FAIL("cannot rename '", tmp.string(), "' to '", path.string(), "': ", ec.message());
    }
}

}  // namespace cxr::apps
