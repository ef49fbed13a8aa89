// The predictions CSV that cxr classifiers write and `cxr evaluate` reads (schema in metrics/README.md):
//   image_id, then for each label L a truth column `L` (1, 0 or empty = unknown) and a score column `L:score`,
//   and the optional attribute columns sex (M/F), age (years), race, site. Other columns are ignored.
// Reading uses a small RFC 4180 record parser private to metrics/ (metrics may depend on tensor/ only, so it cannot
// use data/csv; it accepts quoted fields with commas, doubled quotes and line breaks, CRLF or LF, a UTF-8 BOM).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cxr::metrics {

struct Predictions {
    std::vector<std::string> image_ids;            // [N]
    std::vector<std::string> label_names;          // [L], in column order
    std::vector<std::vector<int>> truth;           // [L][N]: 1, 0, -1 (unknown)
    std::vector<std::vector<double>> scores;       // [L][N]
    // Attributes, empty vectors when the column is absent; an empty cell is "unknown".
    std::vector<std::string> sex;                  // [N] "M", "F" or ""
    std::vector<std::optional<double>> age;        // [N] years
    std::vector<std::string> race, site;           // [N]

    int64_t size() const { return (int64_t)image_ids.size(); }
    // Index of a label by name, or -1.
    int64_t label_index(const std::string& name) const;
};

// Reads and validates a predictions CSV; errors name file:line and the column.
Predictions read_predictions_csv(const std::string& path);
// Parses CSV text; `source_name` is used in errors.
Predictions parse_predictions_csv(const std::string& text, const std::string& source_name);
// Writes the same format (scores with 17 significant digits, so they read back exactly).
void write_predictions_csv(const std::string& path, const Predictions& p);

// Splits CSV text into records of fields (RFC 4180). Exposed for tests; errors name source:line.
std::vector<std::vector<std::string>> parse_csv_records(const std::string& text, const std::string& source_name,
                                                        std::vector<int64_t>* record_lines = nullptr);

}  // namespace cxr::metrics
