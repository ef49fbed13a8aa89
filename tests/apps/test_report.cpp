// The study report (apps/study/report.h) on a hand-written metrics JSON: 3 strategies × 2 test sets, 2 groupings,
// a sweep, 4 sample images written here with data::write_png (one 100×80, downscaled to 64×51) and one missing
// path. Expectations are written by hand from the JSON below: the SVG element counts follow from which values
// and CIs are present, the formatted numbers from the 3-decimal rule, base64 from RFC 4648 §10's test vectors.
#include "tests/support/testing.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "apps/study/report.h"
#include "data/image_io.h"
#include "tensor/error.h"
#include "tensor/ops/creation.h"

using namespace cxr;
namespace fs = std::filesystem;
using cxr::testing::TempDir;
using nlohmann::json;

namespace {

size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size())) ++n;
    return n;
}

// The <svg ...>...</svg> of one chart, found by its data attributes ("" when absent).
std::string chart(const std::string& html, const std::string& kind, const std::string& test_attr,
                  const std::string& grouping = "") {
    std::string key = "data-chart=\"" + kind + "\" data-test=\"" + test_attr + "\"";
    if (!grouping.empty()) key += " data-grouping=\"" + grouping + "\"";
    const size_t at = html.find(key);
    if (at == std::string::npos) return "";
    const size_t begin = html.rfind("<svg", at);
    const size_t end = html.find("</svg>", at);
    return html.substr(begin, end + 6 - begin);
}

// The numeric attribute `name` of every element whose class is `cls`, in document order.
std::vector<double> attr_values(const std::string& svg, const std::string& cls, const std::string& name) {
    std::vector<double> out;
    const std::string key = "class=\"" + cls + "\"";
    for (size_t pos = svg.find(key); pos != std::string::npos; pos = svg.find(key, pos + 1)) {
        const size_t tag_end = svg.find('>', pos);
        const size_t a = svg.find(" " + name + "=\"", pos);
        if (a == std::string::npos || a > tag_end) continue;
        out.push_back(std::stod(svg.substr(a + name.size() + 3)));
    }
    return out;
}

// An independent base64 decoder for the embedded images (RFC 4648 §4, padding required).
std::vector<uint8_t> base64_decode(const std::string& s) {
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<uint8_t> out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        if (c == '=') break;
        const size_t v = alphabet.find(c);
        REQUIRE(v != std::string::npos);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back((uint8_t)((acc >> bits) & 0xFF));
        }
    }
    return out;
}

std::string lower(std::string s) {
    for (char& c : s) c = (char)std::tolower((unsigned char)c);
    return s;
}

// A constant gray image [1, h, w].
void write_gray(const std::string& path, int h, int w, float value) {
    data::write_png(path, tensor::full({1, h, w}, value), 8);
}

json summary_row(const std::string& strategy, const std::string& kind, const std::string& label,
                 const std::string& test, json auroc, json auroc_ci, json auprc, json auprc_ci) {
    json fairness;
    fairness["sex"] = {{"auroc_gap", 0.042},
                       {"auroc_gap_ci", {0.011, 0.0736}},
                       {"underdiagnosis_gap", 0.121},
                       {"underdiagnosis_gap_ci", {0.05, 0.19}},
                       {"subgroups", {{"F", {{"n", 60}, {"auroc", 0.801}}}, {"M", {{"n", 40}, {"auroc", 0.843}}}}}};
    fairness["sex+race"] = {{"auroc_gap", 0.09},
                            {"auroc_gap_ci", nullptr},
                            {"underdiagnosis_gap", nullptr},
                            {"underdiagnosis_gap_ci", nullptr},
                            {"subgroups",
                             {{"F+White", {{"n", 30}, {"auroc", 0.79}}},
                              {"F+Black", {{"n", 30}, {"auroc", 0.77}}},
                              {"M+White", {{"n", 40}, {"auroc", 0.86}}}}}};
    return {{"strategy", strategy},
            {"kind", kind},
            {"variant", ""},
            {"label", label},
            {"real_images", 800},
            {"synthetic_images", kind == "real" ? 0 : 500},
            {"test", test},
            {"seeds", 3},
            {"macro_auroc", auroc},
            {"macro_auroc_ci", auroc_ci},
            {"macro_auprc", auprc},
            {"macro_auprc_ci", auprc_ci},
            {"fairness", fairness},
            {"delong_p", json::object()},
            {"macro_auroc_difference", nullptr},
            {"macro_auroc_difference_ci", nullptr}};
}

const std::string kOod = "ood <site B> & \"x\"";        // a test-set name that needs escaping
const std::string kOodEsc = "ood &lt;site B&gt; &amp; &quot;x&quot;";
const std::string kMix = "mix <+500> & \"syn\"";        // a model label that needs escaping
const std::string kMixEsc = "mix &lt;+500&gt; &amp; &quot;syn&quot;";

// The metrics of a small study; sample images are written under dir.
json make_metrics(const TempDir& dir, bool stand_in) {
    fs::create_directories(fs::path(dir.path()) / "samples");
    write_gray(dir / "samples/real_0.png", 32, 32, 0.25f);
    write_gray(dir / "samples/real_1.png", 100, 80, 0.5f);  // downscaled to 64 × 51
    write_gray(dir / "samples/real_2.png", 16, 16, 0.75f);  // referenced by a relative path
    write_gray(dir / "samples/syn_0.png", 24, 24, 1.0f);

    json m;
    m["format"] = "cxr-study";
    m["version"] = 1;
    m["study"] = {{"name", "Demo <study> & \"friends\""},
                  {"created", "2025-01-31T12:00:00Z"},
                  {"config", {{"seeds", 3}, {"note", "a<b"}}},
                  {"run", {{"git_commit", "abc123def456"}, {"build_type", "Release"}}},
                  {"synthetic_source", {{"description", "second phantom draw (seed 7)"}, {"stand_in", stand_in}}}};
    m["labels"] = {"No Finding", "Cardiomegaly", "Effusion"};
    m["tests"] = {{{"name", "id"}, {"description", "in-distribution test split"}, {"in_distribution", true},
                   {"n", 100}},
                  {{"name", kOod}, {"description", "site B"}, {"in_distribution", false}, {"n", 80}}};
    m["groupings"] = {"sex", "sex+race"};
    m["runs"] = {{{"id", "real/seed0"},
                  {"strategy", "real"},
                  {"kind", "real"},
                  {"variant", ""},
                  {"seed", 0},
                  {"real_images", 800},
                  {"synthetic_images", 0},
                  {"best_epoch", 4},
                  {"valid_macro_auroc", 0.8209},
                  {"train_seconds", 12.34},
                  {"tests", {{"id", {{"macro", {{"auroc", 0.8111}, {"auroc_ci", {0.7801, 0.8402}}}}}}}}}};
    json s;
    // id: real (full CIs), synthetic (no AUROC CI, AUPRC null), mix (full CIs, escaped label).
    s.push_back(summary_row("real", "real", "real only", "id", 0.812, {0.79, 0.8334}, 0.455, {0.401, 0.502}));
    s.push_back(summary_row("synthetic", "synthetic", "synthetic only", "id", 0.7, nullptr, nullptr, nullptr));
    s.push_back(summary_row("mix", "mix", kMix, "id", 0.861, {0.84, 0.88}, 0.52, {0.47, 0.57}));
    // ood: all three with CIs; the synthetic row has no fairness for sex+race.
    s.push_back(summary_row("real", "real", "real only", kOod, 0.75, {0.7, 0.8}, 0.4, {0.35, 0.45}));
    s.push_back(summary_row("synthetic", "synthetic", "synthetic only", kOod, 0.68, {0.62, 0.74}, 0.3, {0.25, 0.35}));
    s.push_back(summary_row("mix", "mix", kMix, kOod, 0.79, {0.74, 0.84}, 0.45, {0.4, 0.5}));
    s[4]["fairness"].erase("sex+race");
    s[2]["delong_p"] = {{"Cardiomegaly", 0.0412}, {"Effusion", 0.0004}};
    s[2]["macro_auroc_difference"] = 0.049;
    s[2]["macro_auroc_difference_ci"] = {0.021, 0.077};
    m["summary"] = s;
    m["sweep"] = {{{"strategy", "pretrain_finetune"},
                   {"test", "id"},
                   {"points",
                    {{{"real_images", 100}, {"macro_auroc", 0.70}, {"macro_auroc_ci", {0.65, 0.75}}},
                     {{"real_images", 400}, {"macro_auroc", 0.78}, {"macro_auroc_ci", {0.74, 0.82}}},
                     {{"real_images", 800}, {"macro_auroc", 0.83}, {"macro_auroc_ci", {0.80, 0.86}}}}}},
                  {{"strategy", "pretrain_finetune"},
                   {"test", kOod},
                   {"points",
                    {{{"real_images", 100}, {"macro_auroc", 0.66}, {"macro_auroc_ci", nullptr}},
                     {{"real_images", 800}, {"macro_auroc", 0.74}, {"macro_auroc_ci", {0.7, 0.78}}}}}}};
    m["samples"] = {
        {"real",
         {{{"path", dir / "samples/real_0.png"}, {"finding", "No Finding"}, {"sex", "F"}, {"race", "White"},
           {"age", 54}},
          {{"path", dir / "samples/real_1.png"}, {"finding", "Cardiomegaly"}, {"sex", "M"}, {"race", "Black"},
           {"age", nullptr}},
          {{"path", "samples/real_2.png"}, {"finding", "Cardiomegaly"}, {"sex", "F"}, {"race", "White"},
           {"age", 61}},
          {{"path", dir / "samples/missing.png"}, {"finding", "Effusion"}, {"sex", ""}, {"race", ""},
           {"age", 70}}}},
        {"synthetic",
         {{{"path", dir / "samples/syn_0.png"}, {"finding", "No Finding"}, {"sex", "F"}, {"race", "Asian"},
           {"age", 40}}}}};
    return m;
}

}  // namespace

TEST_CASE("report: base64 matches the RFC 4648 test vectors", "[report][cpu]") {
    const auto b64 = [](const std::string& s) { return apps::base64_encode((const uint8_t*)s.data(), s.size()); };
    CHECK(b64("") == "");
    CHECK(b64("f") == "Zg==");
    CHECK(b64("fo") == "Zm8=");
    CHECK(b64("foo") == "Zm9v");
    CHECK(b64("foob") == "Zm9vYg==");
    CHECK(b64("fooba") == "Zm9vYmE=");
    CHECK(b64("foobar") == "Zm9vYmFy");
    // High bytes use the last two alphabet characters: 0xFB 0xFF -> 111110 111111 1111(00) = "+/8=".
    CHECK(apps::base64_encode(std::vector<uint8_t>{0xFB, 0xFF}) == "+/8=");
    CHECK(apps::base64_encode(std::vector<uint8_t>{0x00, 0x00, 0x00}) == "AAAA");
}

TEST_CASE("report: HTML escaping", "[report][cpu]") {
    CHECK(apps::html_escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
    CHECK(apps::html_escape("plain") == "plain");
    CHECK(apps::html_escape("") == "");
}

TEST_CASE("report: content, numbers, escaping and chart elements", "[report][cpu]") {
    TempDir dir("content");
    const json m = make_metrics(dir, true);
    const std::string html = apps::study_report_html(m, dir.path());

    SECTION("self-contained: no script, every image a data: URI, no external references") {
        CHECK(lower(html).find("<script") == std::string::npos);
        CHECK(lower(html).find("javascript:") == std::string::npos);
        CHECK(count(html, "<img ") == 4);
        CHECK(count(html, "<img src=\"data:image/png;base64,") == 4);
        CHECK(count(html, "src=\"") == 4);
        CHECK(html.find("href=") == std::string::npos);
        CHECK(html.find("<link") == std::string::npos);
    }
    SECTION("header and stand-in notice") {
        CHECK(html.find("<h1>Demo &lt;study&gt; &amp; &quot;friends&quot;</h1>") != std::string::npos);
        CHECK(html.find("2025-01-31T12:00:00Z") != std::string::npos);
        CHECK(html.find("abc123def456") != std::string::npos);
        CHECK(html.find("second phantom draw (seed 7)") != std::string::npos);
        CHECK(count(html, "class=\"notice-stand-in\"") == 1);
    }
    SECTION("numbers formatted with 3 decimals and CIs; nulls as an en dash") {
        CHECK(html.find("<td class=\"num\">0.812 [0.790, 0.833]</td>") != std::string::npos);
        CHECK(html.find("<td class=\"num\">0.700</td>") != std::string::npos);  // AUROC without a CI
        CHECK(html.find("<td class=\"num\">\u2013</td>") != std::string::npos);  // the null AUPRC
        CHECK(html.find("<td class=\"num\">0.049 [0.021, 0.077]</td>") != std::string::npos);
        CHECK(html.find("<td class=\"num\">0.042 [0.011, 0.074]</td>") != std::string::npos);  // 0.0736 rounds up
        CHECK(html.find("<td class=\"num\">0.843 (40)</td>") != std::string::npos);  // subgroup AUROC (n)
        // DeLong p-values: 3 decimals, below 0.001 as "<0.001"; baseline rows have none.
        CHECK(html.find("<td class=\"num\">0.041</td>") != std::string::npos);
        CHECK(html.find("<td class=\"num\">&lt;0.001</td>") != std::string::npos);
        // The per-run numbers.
        CHECK(html.find("<td class=\"num\">0.821</td>") != std::string::npos);
        CHECK(html.find("<td class=\"num\">12.3</td>") != std::string::npos);
        CHECK(html.find("<td class=\"num\">0.811 [0.780, 0.840]</td>") != std::string::npos);
    }
    SECTION("names are escaped everywhere") {
        CHECK(html.find("<+500>") == std::string::npos);
        CHECK(html.find("<site B>") == std::string::npos);
        CHECK(html.find("<study>") == std::string::npos);
        CHECK(html.find("a<b") == std::string::npos);
        CHECK(html.find(kMixEsc) != std::string::npos);
        CHECK(html.find(kOodEsc) != std::string::npos);
        CHECK(html.find("&quot;note&quot;: &quot;a&lt;b&quot;") != std::string::npos);  // the config <pre>
    }
    SECTION("macro AUROC/AUPRC bars: one bar per summary row with a value, error bars where a CI is") {
        const std::string auroc_id = chart(html, "auroc", "id");
        REQUIRE(!auroc_id.empty());
        CHECK(count(auroc_id, "class=\"bar\"") == 3);
        CHECK(count(auroc_id, "class=\"errbar\"") == 2);  // the synthetic row has no CI
        // Bar heights are ordered as the values: mix 0.861 > real 0.812 > synthetic 0.700.
        const auto h = attr_values(auroc_id, "bar", "height");
        REQUIRE(h.size() == 3);
        CHECK(h[2] > h[0]);
        CHECK(h[0] > h[1]);
        const std::string auprc_id = chart(html, "auprc", "id");
        CHECK(count(auprc_id, "class=\"bar\"") == 2);  // the synthetic AUPRC is null
        CHECK(count(auprc_id, "class=\"errbar\"") == 2);
        const std::string auroc_ood = chart(html, "auroc", kOodEsc);
        CHECK(count(auroc_ood, "class=\"bar\"") == 3);
        CHECK(count(auroc_ood, "class=\"errbar\"") == 3);
        CHECK(count(html, "data-chart=\"auroc\"") == 2);
        CHECK(count(html, "data-chart=\"auprc\"") == 2);
    }
    SECTION("gap vs AUROC scatter plots: one point per row with values, whiskers per CI") {
        CHECK(count(html, "data-chart=\"gap-vs-auroc\"") == 4);  // 2 tests × 2 groupings
        CHECK(count(html, "data-chart=\"underdiagnosis-vs-auroc\"") == 4);
        const std::string gap = chart(html, "gap-vs-auroc", "id", "sex");
        REQUIRE(!gap.empty());
        CHECK(count(gap, "class=\"point\"") == 3);
        // x whiskers: real and mix have AUROC CIs; y whiskers: all three have gap CIs.
        CHECK(count(gap, "class=\"whisker\"") == 2 + 3);
        CHECK(count(gap, "class=\"point-label\"") == 3);
        const std::string under_race = chart(html, "underdiagnosis-vs-auroc", "id", "sex+race");
        CHECK(count(under_race, "class=\"point\"") == 0);  // every underdiagnosis gap is null
        const std::string gap_race_ood = chart(html, "gap-vs-auroc", kOodEsc, "sex+race");
        CHECK(count(gap_race_ood, "class=\"point\"") == 2);  // the synthetic row has no sex+race values
        CHECK(count(gap_race_ood, "class=\"whisker\"") == 2);  // AUROC CIs only; the gap CIs are null
    }
    SECTION("subgroup bars on the in-distribution test only, one colour per model, legend") {
        CHECK(count(html, "data-chart=\"subgroups\"") == 2);
        const std::string sex = chart(html, "subgroups", "id", "sex");
        REQUIRE(!sex.empty());
        CHECK(count(sex, "class=\"bar\"") == 2 * 3);
        CHECK(count(sex, "class=\"legend-item\"") == 3);
        CHECK(count(sex, "class=\"category\"") == 2);
        const std::string race = chart(html, "subgroups", "id", "sex+race");
        CHECK(count(race, "class=\"bar\"") == 3 * 3);
        CHECK(chart(html, "subgroups", kOodEsc, "sex").empty());
        // The three models have three different colours.
        CHECK(count(sex, "fill=\"#0072B2\"") == 3);  // 2 bars + 1 legend swatch
        CHECK(count(sex, "fill=\"#E69F00\"") == 3);
        CHECK(count(sex, "fill=\"#009E73\"") == 3);
    }
    SECTION("the sweep: one line per (strategy, test), a band where every point has a CI") {
        const std::string sweep = chart(html, "sweep", "");
        REQUIRE(!sweep.empty());
        CHECK(count(sweep, "class=\"line\"") == 2);
        CHECK(count(sweep, "class=\"band\"") == 1);
        CHECK(count(sweep, "class=\"point\"") == 5);
        CHECK(count(sweep, "class=\"legend-item\"") == 2);
        CHECK(html.find("Real-data sweep") != std::string::npos);
    }
    SECTION("image grids: 4 images, a placeholder and a note for the missing file, downscaled to <= 64 px") {
        CHECK(count(html, "class=\"placeholder\"") == 1);
        CHECK(html.find("missing.png: file not found") != std::string::npos);
        CHECK(html.find("width=\"51\" height=\"64\"") != std::string::npos);  // 100×80 -> 64×51
        CHECK(html.find("width=\"32\" height=\"32\"") != std::string::npos);  // small images keep their size
        // Columns by sex / race: F / White, M / Black, ? / unknown for real; F / Asian for synthetic.
        CHECK(html.find("<th>F / White</th><th>M / Black</th><th>? / unknown</th>") != std::string::npos);
        CHECK(html.find("<th>F / Asian</th>") != std::string::npos);
        // Decode the downscaled image back: 64 × 51, constant 0.5 -> 128/255 after resizing.
        const size_t at = html.find("width=\"51\" height=\"64\"");
        const size_t src = html.rfind("base64,", at) + 7;
        const std::string b64 = html.substr(src, html.find('"', src) - src);
        const auto png = base64_decode(b64);
        const auto img = data::decode_image(png.data(), png.size(), "embedded");
        REQUIRE(img.shape() == tensor::Shape{1, 64, 51});
        const auto px = img.contiguous();
        const float* p = px.data<float>();
        for (int64_t i = 0; i < px.numel(); ++i) REQUIRE(std::fabs(p[i] - 128.0f / 255.0f) < 1e-6f);
    }
}

TEST_CASE("report: the stand-in notice appears only for a stand-in source; empty sections", "[report][cpu]") {
    TempDir dir("nostandin");
    json m = make_metrics(dir, false);
    m["sweep"] = json::array();
    const std::string html = apps::study_report_html(m, dir.path());
    CHECK(html.find("class=\"notice-stand-in\"") == std::string::npos);
    CHECK(html.find("second phantom draw (seed 7)") != std::string::npos);
    CHECK(html.find("Real-data sweep") == std::string::npos);
    CHECK(html.find("data-chart=\"sweep\"") == std::string::npos);

    // A minimal study: only the required keys. Every section degrades to a note, nothing throws.
    const json minimal = {{"format", "cxr-study"}, {"version", 1}};
    const std::string small = apps::study_report_html(minimal);
    CHECK(small.find("(unnamed study)") != std::string::npos);
    CHECK(small.find("No real samples listed.") != std::string::npos);
    CHECK(small.find("<svg") == std::string::npos);
}

TEST_CASE("report: written atomically; relative sample paths resolve beside the report", "[report][cpu]") {
    TempDir dir("write");
    const json m = make_metrics(dir, true);
    const std::string path = dir / "report.html";
    apps::write_study_report(m, path);
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    CHECK(text == apps::study_report_html(m, dir.path()));
    CHECK(count(text, "<img src=\"data:image/png;base64,") == 4);  // samples/real_2.png found beside report.html
    // Nothing but the report and the samples folder is left: no temporary file.
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"report.html", "samples"});
    // Overwriting keeps one file.
    apps::write_study_report(m, path);
    CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}) == 2);

    // Without a base directory the relative path is looked up in the working directory, where it is missing.
    const std::string no_base = apps::study_report_html(m);
    CHECK(count(no_base, "class=\"placeholder\"") == 2);
}

TEST_CASE("report: errors on bad input and unwritable paths", "[report][cpu]") {
    TempDir dir("errors");
    const json good = make_metrics(dir, true);
    using Catch::Matchers::Contains;

    CHECK_THROWS_AS(apps::write_study_report(good, (fs::path(dir.path()) / "no_such_dir" / "report.html").string()), cxr::Error);
    CHECK_THROWS_WITH(apps::write_study_report(good, (fs::path(dir.path()) / "no_such_dir" / "report.html").string()),
                      Contains("cannot write the study report"));
    // A directory where the report should go: the rename fails and the temporary file is removed.
    fs::create_directories(fs::path(dir.path()) / "taken" / "report.html" / "x");
    CHECK_THROWS_AS(apps::write_study_report(good, (fs::path(dir.path()) / "taken" / "report.html").string()), cxr::Error);
    CHECK(std::distance(fs::directory_iterator(fs::path(dir.path()) / "taken"), fs::directory_iterator{}) == 1);

    CHECK_THROWS_WITH(apps::study_report_html(json::array()), Contains("must be a JSON object"));
    json m = good;
    m["format"] = "cxr-evaluate";
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("\"format\" must be \"cxr-study\""));
    m = good;
    m.erase("format");
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("\"format\""));
    m = good;
    m["version"] = 2;
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("unsupported \"version\" 2"));
    m = good;
    m["summary"] = "none";
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("summary must be an array, got string"));
    m = good;
    m["summary"][1]["macro_auroc"] = "0.8";
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("summary[1].macro_auroc must be a number or null"));
    m = good;
    m["summary"][0]["macro_auroc_ci"] = {0.1, 0.2, 0.3};
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("summary[0].macro_auroc_ci must be [lo, hi] or null"));
    m = good;
    m["summary"][0]["macro_auprc_ci"] = {0.1, "x"};
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("summary[0].macro_auprc_ci must hold numbers"));
    m = good;
    m["summary"][0]["fairness"]["sex"]["auroc_gap"] = json::array();
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("summary[0].fairness.sex.auroc_gap"));
    m = good;
    m["summary"][2] = 5;
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("summary[2] must be an object"));
    m = good;
    m["study"]["synthetic_source"]["stand_in"] = "yes";
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("study.synthetic_source.stand_in must be true or false"));
    m = good;
    m["sweep"][0]["points"][1]["real_images"] = "many";
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("sweep[0].points[1].real_images"));
    m = good;
    m["samples"]["real"][0] = "a.png";
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("samples.real[0] must be an object"));
    m = good;
    m["runs"][0]["tests"]["id"]["macro"]["auroc"] = true;
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("runs[0].tests.id.macro.auroc"));
    m = good;
    m["groupings"] = {"sex", 3};
    CHECK_THROWS_WITH(apps::study_report_html(m), Contains("groupings[1] must be a string"));

    // A corrupt image is a placeholder with the reason, not an error.
    m = good;
    {
        std::ofstream bad(dir / "samples/corrupt.png", std::ios::binary);
        bad << "not a png";
    }
    m["samples"]["synthetic"][0]["path"] = dir / "samples/corrupt.png";
    const std::string html = apps::study_report_html(m, dir.path());
    CHECK(count(html, "class=\"placeholder\"") == 2);
    CHECK(html.find("corrupt.png: unreadable") != std::string::npos);
}
