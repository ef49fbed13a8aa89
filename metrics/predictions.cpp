// Reading and writing the predictions CSV (format in predictions.h and metrics/README.md), with a minimal RFC 4180
// record parser (https://www.rfc-editor.org/rfc/rfc4180): fields separated by commas, records by CRLF or LF,
// quoted fields may hold commas, line breaks and doubled quotes. It is private to metrics/ because of the layering
// (metrics depends on tensor/ only); the full reader with gzip support is data/csv.
#include "metrics/predictions.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tensor/error.h"

namespace cxr::metrics {

int64_t Predictions::label_index(const std::string& name) const {
    for (size_t i = 0; i < label_names.size(); ++i)
        if (label_names[i] == name) return (int64_t)i;
    return -1;
}

std::vector<std::vector<std::string>> parse_csv_records(const std::string& text, const std::string& source_name,
                                                        std::vector<int64_t>* record_lines) {
    std::vector<std::vector<std::string>> records;
    if (record_lines) record_lines->clear();
    size_t i = 0;
    if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 byte-order mark
    int64_t line = 1;
    std::vector<std::string> fields;
    std::string field;
    bool in_record = false;
    int64_t record_line = 1;
    auto end_record = [&]() {
        fields.push_back(field);
        field.clear();
        if (!(fields.size() == 1 && fields[0].empty())) {  // skip empty lines
            records.push_back(fields);
            if (record_lines) record_lines->push_back(record_line);
        }
        fields.clear();
        in_record = false;
    };
    while (i < text.size()) {
        if (!in_record) {
            in_record = true;
            record_line = line;
        }
        char c = text[i];
        if (c == '"' && field.empty()) {
            // Quoted field: up to the closing quote; "" is one quote.
            const int64_t opened = line;
            ++i;
            bool closed = false;
            while (i < text.size()) {
                char q = text[i++];
                if (q == '"') {
                    if (i < text.size() && text[i] == '"') {
                        field.push_back('"');
                        ++i;
                    } else {
                        closed = true;
                        break;
                    }
                } else {
                    if (q == '\n') ++line;
                    field.push_back(q);
                }
            }
            CXR_CHECK(closed, source_name, ":", opened, ": quoted field never closed");
            CXR_CHECK(i >= text.size() || text[i] == ',' || text[i] == '\n' || text[i] == '\r', source_name, ":",
                      line, ": unexpected character after a closing quote (RFC 4180 section 2.7)");
            continue;
        }
        ++i;
        if (c == ',') {
            fields.push_back(field);
            field.clear();
        } else if (c == '\n' || c == '\r') {
            if (c == '\r' && i < text.size() && text[i] == '\n') ++i;
            end_record();
            ++line;
        } else {
            CXR_CHECK(c != '"', source_name, ":", line, ": quote inside an unquoted field (quote the whole field)");
            field.push_back(c);
        }
    }
    if (in_record) end_record();
    return records;
}

namespace {

std::string trim(const std::string& s) {
    size_t a = 0, b = s.size();
    while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) --b;
    return s.substr(a, b - a);
}

bool parse_double(const std::string& s, double& out) {
    if (s.empty()) return false;
    try {
        size_t used = 0;
        out = std::stod(s, &used);
        return used == s.size();
    } catch (...) {
        return false;
    }
}

}  // namespace

Predictions parse_predictions_csv(const std::string& text, const std::string& source) {
    std::vector<int64_t> lines;
    const auto records = parse_csv_records(text, source, &lines);
    CXR_CHECK(!records.empty(), source, ": empty file (expected a header line starting with image_id)");
    const std::vector<std::string>& header = records[0];
    std::map<std::string, size_t> column;
    for (size_t c = 0; c < header.size(); ++c) {
        const std::string name = trim(header[c]);
        CXR_CHECK(!column.count(name), source, ":", lines[0], ": column '", name, "' appears twice");
        column[name] = c;
    }
    CXR_CHECK(column.count("image_id"), source, ":", lines[0], ": no image_id column");
    Predictions p;
    std::vector<size_t> truth_col, score_col;
    for (size_t c = 0; c < header.size(); ++c) {
        const std::string name = trim(header[c]);
        const std::string suffix = ":score";
        if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
            const std::string label = name.substr(0, name.size() - suffix.size());
            CXR_CHECK(column.count(label), source, ":", lines[0], ": column '", name, "' has no truth column '",
                      label, "'");
            p.label_names.push_back(label);
            truth_col.push_back(column[label]);
            score_col.push_back(c);
        }
    }
    CXR_CHECK(!p.label_names.empty(), source, ":", lines[0],
              ": no label columns (expected pairs of columns `L` and `L:score`)");
    const size_t L = p.label_names.size();
    p.truth.resize(L);
    p.scores.resize(L);
    auto opt_col = [&](const char* name) -> int64_t { return column.count(name) ? (int64_t)column[name] : -1; };
    const int64_t sex_c = opt_col("sex"), age_c = opt_col("age"), race_c = opt_col("race"), site_c = opt_col("site");
    std::map<std::string, int64_t> seen;
    for (size_t r = 1; r < records.size(); ++r) {
        const auto& f = records[r];
        const int64_t line = lines[r];
        CXR_CHECK(f.size() == header.size(), source, ":", line, ": ", f.size(), " fields but the header has ",
                  header.size());
        const std::string id = trim(f[column["image_id"]]);
        CXR_CHECK(!id.empty(), source, ":", line, ": empty image_id");
        CXR_CHECK(!seen.count(id), source, ":", line, ": image_id '", id, "' already on line ", seen[id]);
        seen[id] = line;
        p.image_ids.push_back(id);
        for (size_t l = 0; l < L; ++l) {
            const std::string t = trim(f[truth_col[l]]);
            int truth = -1;
            double tv = 0;
            if (!t.empty()) {
                CXR_CHECK(parse_double(t, tv) && (tv == 0.0 || tv == 1.0), source, ":", line, ": column '",
                          p.label_names[l], "' must be 1, 0 or empty (unknown), got '", t, "'");
                truth = tv == 1.0 ? 1 : 0;
            }
            const std::string s = trim(f[score_col[l]]);
            double score = 0;
            CXR_CHECK(parse_double(s, score) && std::isfinite(score), source, ":", line, ": column '",
                      p.label_names[l], ":score' must be a finite number, got '", s, "'");
            p.truth[l].push_back(truth);
            p.scores[l].push_back(score);
        }
        if (sex_c >= 0) {
            const std::string s = trim(f[sex_c]);
            CXR_CHECK(s.empty() || s == "M" || s == "F", source, ":", line,
                      ": column 'sex' must be M, F or empty, got '", s, "'");
            p.sex.push_back(s);
        }
        if (age_c >= 0) {
            const std::string s = trim(f[age_c]);
            double a = 0;
            if (s.empty()) {
                p.age.push_back(std::nullopt);
            } else {
                CXR_CHECK(parse_double(s, a) && a >= 0 && a < 200, source, ":", line,
                          ": column 'age' must be years (0-200) or empty, got '", s, "'");
                p.age.push_back(a);
            }
        }
        if (race_c >= 0) p.race.push_back(trim(f[race_c]));
        if (site_c >= 0) p.site.push_back(trim(f[site_c]));
    }
    return p;
}

Predictions read_predictions_csv(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    CXR_CHECK(in, "cannot open predictions file '", path, "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    CXR_CHECK(!in.bad(), "error reading predictions file '", path, "'");
    return parse_predictions_csv(ss.str(), path);
}

namespace {

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) {
        if (c == '"') q.push_back('"');
        q.push_back(c);
    }
    return q + "\"";
}

}  // namespace

void write_predictions_csv(const std::string& path, const Predictions& p) {
    const size_t N = p.image_ids.size(), L = p.label_names.size();
    CXR_CHECK(p.truth.size() == L && p.scores.size() == L, "write_predictions_csv: ", L, " labels but ",
              p.truth.size(), " truth and ", p.scores.size(), " score columns");
    for (size_t l = 0; l < L; ++l)
        CXR_CHECK(p.truth[l].size() == N && p.scores[l].size() == N, "write_predictions_csv: label '",
                  p.label_names[l], "' has a column of the wrong length");
    auto check_len = [&](size_t n, const char* what) {
        CXR_CHECK(n == 0 || n == N, "write_predictions_csv: column ", what, " has ", n, " entries, expected ", N);
    };
    check_len(p.sex.size(), "sex");
    check_len(p.age.size(), "age");
    check_len(p.race.size(), "race");
    check_len(p.site.size(), "site");
    std::ostringstream os;
    os << "image_id";
    for (const auto& l : p.label_names) os << "," << csv_field(l) << "," << csv_field(l + ":score");
    if (!p.sex.empty()) os << ",sex";
    if (!p.age.empty()) os << ",age";
    if (!p.race.empty()) os << ",race";
    if (!p.site.empty()) os << ",site";
    os << "\n";
    char buf[64];
    for (size_t i = 0; i < N; ++i) {
        os << csv_field(p.image_ids[i]);
        for (size_t l = 0; l < L; ++l) {
            os << ",";
            if (p.truth[l][i] != -1) os << p.truth[l][i];
            std::snprintf(buf, sizeof buf, "%.17g", p.scores[l][i]);
            os << "," << buf;
        }
        if (!p.sex.empty()) os << "," << p.sex[i];
        if (!p.age.empty()) {
            os << ",";
            if (p.age[i]) {
                std::snprintf(buf, sizeof buf, "%.17g", *p.age[i]);
                os << buf;
            }
        }
        if (!p.race.empty()) os << "," << csv_field(p.race[i]);
        if (!p.site.empty()) os << "," << csv_field(p.site[i]);
        os << "\n";
    }
    // Temporary name, then rename: a failed write never leaves a half-written file.
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        CXR_CHECK(out, "cannot write '", tmp, "'");
        out << os.str();
        out.flush();
        CXR_CHECK(out, "error writing '", tmp, "'");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    CXR_CHECK(!ec, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

}  // namespace cxr::metrics
