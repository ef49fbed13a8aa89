// The study report: one self-contained HTML page (inline SVG charts, images as data: URIs, no JavaScript, no
// external files) written from a study's metrics JSON (format "cxr-study", version 1; schema below). It follows
// the figures of the RoentGen-v2 paper:
//   1. header: study name, date, git commit, the synthetic source (a visible notice when it is a stand-in);
//   2. per test set: macro AUROC and macro AUPRC bars with CI error bars, one bar per summary row;
//   3. per test set and grouping: fairness gap (max − min subgroup AUROC) vs macro AUROC and underdiagnosis gap vs
//      macro AUROC scatter plots with CI whiskers (the paper's figures 8 and 9);
//   4. subgroup AUROC bars per grouping on the in-distribution test set(s), one colour per summary row, legend;
//   5. the real-data sweep: macro AUROC (CI band) vs the number of real images used for fine-tuning;
//   6. image grids of real and synthetic samples, rows by finding, columns by sex + race, each image downscaled
//      to at most 64 px (antialiased, data::resize_image) and embedded as data:image/png;base64 (RFC 4648);
//   7. a table of every summary number with its CI (3 decimals, null as "–"), DeLong p-values vs the real-only
//      baseline, subgroup AUROCs and the per-run numbers;
//   8. the resolved config and the run record (pretty JSON).
// All text from the JSON is HTML-escaped. Bad input (a wrong format/version, a field of the wrong type) throws
// cxr::Error naming the JSON path (e.g. "summary[2].macro_auroc_ci"); a missing or unreadable sample image is a
// placeholder cell and a note, never an error.
//
// metrics.json (every number may be null, every array empty; missing keys read as null):
// {
//   "format": "cxr-study", "version": 1,
//   "study": {"name": str, "created": ISO date, "config": {...resolved config...}, "run": {"git_commit": str, ...},
//             "synthetic_source": {"description": str, "stand_in": bool}},
//   "labels": [str, ...], "groupings": ["sex", "sex+race", ...],
//   "tests": [{"name": str, "description": str, "in_distribution": bool, "n": int}, ...],
//   "runs": [{"id": "real/seed0", "strategy", "kind": "real|synthetic|mix|pretrain_finetune", "variant", "seed",
//             "real_images", "synthetic_images", "best_epoch", "valid_macro_auroc", "train_seconds",
//             "tests": {"<test>": <the `cxr evaluate` JSON of metrics/README.md>}}],
//   "summary": [{"strategy", "kind", "variant", "label" (display name), "real_images", "synthetic_images", "test",
//                "seeds", "macro_auroc", "macro_auroc_ci": [lo, hi] | null, "macro_auprc", "macro_auprc_ci",
//                "fairness": {"<grouping>": {"auroc_gap", "auroc_gap_ci", "underdiagnosis_gap",
//                             "underdiagnosis_gap_ci", "subgroups": {"<name>": {"n", "auroc"}}}},
//                "delong_p": {"<label>": p}, "macro_auroc_difference", "macro_auroc_difference_ci"}],
//   "sweep": [{"strategy", "test", "points": [{"real_images", "macro_auroc", "macro_auroc_ci"}]}],
//   "samples": {"real": [{"path", "finding", "sex": "M"|"F"|"", "race", "age"}], "synthetic": [...]}
// }
// Summary rows are charted per test set in the order given; a row's "label" keeps its colour in every chart. The
// subgroup bars use the tests with in_distribution = true (the first test set when none is marked). At most 4
// images are shown per grid cell.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cxr::apps {

// Writes the report to html_path atomically (temporary name beside it, then rename). Relative sample paths are
// looked up beside html_path first, then relative to the working directory.
void write_study_report(const nlohmann::json& metrics, const std::string& html_path);

// The same page as a string. Relative sample paths are looked up under base_dir first (when not empty), then
// relative to the working directory.
std::string study_report_html(const nlohmann::json& metrics, const std::string& base_dir = "");

// Base64 with the standard alphabet and '=' padding (RFC 4648 §4).
std::string base64_encode(const uint8_t* data, size_t size);
std::string base64_encode(const std::vector<uint8_t>& bytes);

// HTML escaping of text and attribute values: & < > " ' become entities.
std::string html_escape(const std::string& text);

}  // namespace cxr::apps
