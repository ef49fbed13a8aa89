// Agreement of the rule-based report labeler (data/labeler.h) with the Indiana University collection's MeSH
// major codes, per label: positives by each, sensitivity, specificity and Cohen's kappa, as a Markdown table.
// The labeler reads the report's FINDINGS and IMPRESSION sections joined (the MeSH codes index the whole
// report); uncertain counts as positive (U-ones), as the mapping in data/labeler.h explains; the last column gives
// kappa with uncertain counted as negative (U-zeros) for comparison.
//
// Usage: bench_labeler [PATH/iu_xray_reports.csv]   (default: $CXR_REAL_DATA/reports/..., else
//        ../shared/data/reports/iu_xray_reports.csv beside the repository)
//        bench_labeler --impression-only [PATH]     (label the impression alone)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "data/csv.h"
#include "data/labeler.h"
#include "data/labels.h"
#include "tensor/error.h"

int main(int argc, char** argv) {
    using namespace cxr::data;
    // Default: $CXR_REAL_DATA/reports/..., else ../shared/data beside the repository (found from this file's path).
    const char* env = std::getenv("CXR_REAL_DATA");
    const std::filesystem::path data = env && *env ? std::filesystem::path(env)
                                                   : std::filesystem::path(__FILE__).parent_path().parent_path()
                                                         .parent_path() / "shared" / "data";
    std::string path = (data / "reports" / "iu_xray_reports.csv").string();
    bool impression_only = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--impression-only")) impression_only = true;
        else path = argv[i];
    }
    try {
        const CsvTable t = CsvTable::read(path);
        std::vector<Agreement> agree(kNumChexpertLabels), strict(kNumChexpertLabels);  // U-ones, U-zeros
        const auto t0 = std::chrono::steady_clock::now();
        for (size_t r = 0; r < t.num_rows(); ++r) {
            const std::string text =
                impression_only ? t.at(r, "impression") : t.at(r, "findings") + "\n" + t.at(r, "impression");
            const LabelerResult res = label_report(text);
            const auto ref = mesh_reference(t.at(r, "mesh_major"));
            for (int k : mesh_compared_labels()) {
                agree[k].add(res.labels[k] == LabelValue::positive || res.labels[k] == LabelValue::uncertain, ref[k]);
                strict[k].add(res.labels[k] == LabelValue::positive, ref[k]);
            }
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("reports: %zu (%s), labelled in %.2f s (%.0f reports/s)\n\n", t.num_rows(),
                    impression_only ? "impression only" : "findings + impression", s, (double)t.num_rows() / s);
        std::printf("| label | MeSH positive | labeler positive | sensitivity | specificity | kappa | kappa (uncertain = negative) |\n");
        std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
        for (int k : mesh_compared_labels()) {
            const Agreement& a = agree[k];
            std::printf("| %s | %lld | %lld | %.3f | %.3f | %.3f | %.3f |\n", chexpert_labels()[k].c_str(),
                        (long long)a.reference_positive(), (long long)a.labeler_positive(), a.sensitivity(),
                        a.specificity(), a.kappa(), strict[k].kappa());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_labeler: %s\n", e.what());
        return 1;
    }
    return 0;
}
