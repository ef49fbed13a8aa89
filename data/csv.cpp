// CSV reading (RFC 4180) from plain or gzip files through zlib's gz* interface (gzread passes plain files through
// unchanged and decompresses gzip streams, RFC 1952). See csv.h for the accepted syntax and the bracket-header rule.
#include "data/csv.h"

#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>

#include "tensor/error.h"

namespace cxr::data {

// The byte source: a gzFile (plain or compressed file) or a string, read through one buffer.
struct CsvReader::Source {
    gzFile gz = nullptr;
    std::string text;  // in-memory input (gz == nullptr)
    std::vector<char> buf;
    size_t pos = 0, len = 0;
    bool eof = false;
    std::string name;

    ~Source() {
        if (gz) gzclose(gz);
    }

    // Refills the buffer; false at the end of the input.
    bool fill() {
        if (eof) return false;
        if (!gz) {
            eof = true;
            return false;
        }
        int n = gzread(gz, buf.data(), (unsigned)buf.size());
        int errnum = Z_OK;
        const char* msg = gzerror(gz, &errnum);
        if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END))
            CXR_FAIL(name, ": cannot read (", (msg && *msg ? msg : "I/O error"),
                     "); the gzip stream is corrupt or truncated");
        if (n == 0) {
            eof = true;
            return false;
        }
        pos = 0;
        len = (size_t)n;
        return true;
    }
    const char* data() const { return gz ? buf.data() : text.data(); }
};

CsvReader::CsvReader(const std::string& path, CsvOptions options) : source_(path), opt_(options) {
    src_ = std::make_unique<Source>();
    src_->name = path;
    src_->gz = gzopen(path.c_str(), "rb");
    if (!src_->gz) CXR_FAIL(path, ": cannot open for reading (", std::strerror(errno), ")");
    gzbuffer(src_->gz, 1 << 17);
    src_->buf.resize(1 << 16);
}

CsvReader CsvReader::from_string(const std::string& text, const std::string& source_name, CsvOptions options) {
    CsvReader r;
    r.source_ = source_name;
    r.opt_ = options;
    r.src_ = std::make_unique<Source>();
    r.src_->name = source_name;
    r.src_->text = text;
    r.src_->len = r.src_->text.size();
    return r;
}

CsvReader::~CsvReader() = default;
CsvReader::CsvReader(CsvReader&&) noexcept = default;
CsvReader& CsvReader::operator=(CsvReader&&) noexcept = default;

int CsvReader::peek() {
    Source& s = *src_;
    if (s.pos >= s.len && !s.fill()) return -1;
    if (!started_) {  // drop a UTF-8 byte-order mark at the very start
        started_ = true;
        const unsigned char* p = (const unsigned char*)s.data() + s.pos;
        if (s.len - s.pos >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
            s.pos += 3;
            if (s.pos >= s.len && !s.fill()) return -1;
        }
    }
    return (unsigned char)s.data()[s.pos];
}

int CsvReader::get() {
    int c = peek();
    if (c < 0) return c;
    src_->pos++;
    if (c == '\n') {
        line_++;
        column_ = 0;
    } else if (c == '\r') {
        if (peek() != '\n') {  // a lone CR ends a line; CRLF counts once, at the LF
            line_++;
            column_ = 0;
        } else {
            column_++;
        }
    } else {
        column_++;
    }
    return c;
}

void CsvReader::fail(int64_t line, int64_t column, const std::string& what) const {
    CXR_FAIL(source_, ":", line, ":", column, ": ", what);
}

bool CsvReader::next(std::vector<std::string>& fields, std::vector<bool>* quoted) {
    fields.clear();
    if (quoted) quoted->clear();
    // Skip empty lines.
    for (;;) {
        int c = peek();
        if (c < 0) return false;
        if (c == '\r' || c == '\n') {
            get();
            continue;
        }
        break;
    }
    record_line_ = line_;
    const char delim = opt_.delimiter;
    std::string field;
    for (;;) {  // one field per iteration
        field.clear();
        bool is_quoted = false;
        int c = peek();
        bool end_of_record = false;
        if (c == '"') {
            is_quoted = true;
            get();
            const int64_t open_line = line_, open_col = column_;
            for (;;) {
                c = get();
                if (c < 0) fail(open_line, open_col, "quoted field opened here is not closed before the end of the file");
                if (c == '"') {
                    if (peek() == '"') {
                        get();
                        field += '"';
                    } else {
                        break;
                    }
                } else {
                    field += (char)c;
                }
            }
            c = peek();
            if (c == delim) {
                get();
            } else if (c == '\r' || c == '\n' || c < 0) {
                end_of_record = true;
            } else {
                fail(line_, column_ + 1,
                     std::string("unexpected character '") + (char)c +
                         "' after a closing quote (expected the delimiter or the end of the line)");
            }
        } else {
            for (;;) {
                c = peek();
                if (c == delim) {
                    get();
                    break;
                }
                if (c == '\r' || c == '\n' || c < 0) {
                    end_of_record = true;
                    break;
                }
                if (c == '"' && opt_.strict_quotes)
                    fail(line_, column_ + 1,
                         "quote inside an unquoted field (RFC 4180: a field holding quotes must be quoted and its "
                         "quotes doubled)");
                field += (char)c;
                get();
            }
        }
        fields.push_back(field);
        if (quoted) quoted->push_back(is_quoted);
        if (end_of_record) {
            c = peek();
            if (c == '\r') {
                get();
                if (peek() == '\n') get();
            } else if (c == '\n') {
                get();
            }
            return true;
        }
    }
}

// ---- header names ----

std::vector<std::string> expand_bracket_header(const std::vector<std::string>& fields, const std::vector<bool>& quoted,
                                               std::map<std::string, std::vector<std::string>>* groups) {
    std::vector<std::string> names = fields;
    auto is_quoted = [&](size_t i) { return i < quoted.size() && quoted[i]; };
    for (size_t i = 0; i < fields.size(); ++i) {
        const std::string& f = fields[i];
        if (is_quoted(i)) continue;
        size_t open = f.find('[');
        if (open == std::string::npos || f.find(']', open) != std::string::npos) continue;
        // Find the field that closes the bracket; every field in between must be unquoted and bracket-free.
        size_t j = i + 1;
        bool ok = false;
        for (; j < fields.size(); ++j) {
            if (is_quoted(j) || fields[j].find('[') != std::string::npos) break;
            size_t close = fields[j].find(']');
            if (close != std::string::npos) {
                ok = close + 1 == fields[j].size();
                break;
            }
        }
        if (!ok) continue;
        const std::string base = f.substr(0, open);
        std::vector<std::string> subs;
        subs.push_back(f.substr(open + 1));
        for (size_t k = i + 1; k < j; ++k) subs.push_back(fields[k]);
        subs.push_back(fields[j].substr(0, fields[j].size() - 1));
        std::string full = base + "[";
        std::vector<std::string> expanded;
        for (size_t k = 0; k < subs.size(); ++k) {
            full += (k ? "," : "") + subs[k];
            names[i + k] = base + "[" + subs[k] + "]";
            expanded.push_back(names[i + k]);
        }
        full += "]";
        if (groups) (*groups)[full] = expanded;
        i = j;
    }
    return names;
}

// ---- CsvTable ----

CsvTable CsvTable::read(const std::string& path, CsvOptions options) {
    CsvReader reader(path, options);
    return from_reader(reader, options);
}

CsvTable CsvTable::parse(const std::string& text, const std::string& source_name, CsvOptions options) {
    CsvReader reader = CsvReader::from_string(text, source_name, options);
    return from_reader(reader, options);
}

CsvTable CsvTable::from_reader(CsvReader& reader, const CsvOptions& options) {
    CsvTable t;
    t.source_ = reader.source();
    std::vector<std::string> fields;
    std::vector<bool> quoted;
    size_t width = 0;
    bool have_width = false;
    if (options.has_header) {
        if (!reader.next(fields, &quoted)) CXR_FAIL(t.source_, ":1:1: empty file (a header line was expected)");
        t.header_ = options.expand_bracket_headers ? expand_bracket_header(fields, quoted, &t.groups_) : fields;
        width = t.header_.size();
        have_width = true;
        std::set<std::string> dup;
        for (size_t i = 0; i < t.header_.size(); ++i) {
            if (t.index_.count(t.header_[i])) dup.insert(t.header_[i]);
            t.index_.emplace(t.header_[i], i);
        }
        for (const auto& d : dup) t.index_[d] = (size_t)-1;  // ambiguous: column() refuses it
    }
    while (reader.next(fields)) {
        if (!have_width) {
            width = fields.size();
            have_width = true;
        }
        if (fields.size() != width)
            CXR_FAIL(t.source_, ":", reader.record_line(), ":1: record has ", fields.size(), " fields, expected ",
                     width, options.has_header ? " (as many as the header)" : " (as many as the first record)");
        t.rows_.push_back(fields);
        t.lines_.push_back(reader.record_line());
    }
    if (!options.has_header) {
        for (size_t i = 0; i < width; ++i) t.header_.push_back("column" + std::to_string(i + 1));
        for (size_t i = 0; i < width; ++i) t.index_.emplace(t.header_[i], i);
    }
    return t;
}

bool CsvTable::has_column(const std::string& name) const {
    auto it = index_.find(name);
    return it != index_.end() && it->second != (size_t)-1;
}

size_t CsvTable::column(const std::string& name) const {
    auto it = index_.find(name);
    if (it != index_.end() && it->second != (size_t)-1) return it->second;
    std::ostringstream os;
    if (it != index_.end()) {
        os << "column name '" << name << "' appears more than once in the header";
    } else {
        os << "no column '" << name << "'";
        auto g = groups_.find(name);
        if (g != groups_.end()) {
            os << " (the header's bracket group splits into columns";
            for (const auto& e : g->second) os << " '" << e << "'";
            os << ")";
        }
        os << "; columns:";
        for (const auto& h : header_) os << " '" << h << "'";
    }
    CXR_FAIL(source_, ":1: ", os.str());
}

const std::vector<std::string>& CsvTable::row(size_t r) const {
    CXR_CHECK(r < rows_.size(), source_, ": row ", r, " out of range (", rows_.size(), " rows)");
    return rows_[r];
}

const std::string& CsvTable::at(size_t r, size_t c) const {
    const auto& rw = row(r);
    CXR_CHECK(c < rw.size(), source_, ": column ", c, " out of range (", rw.size(), " columns)");
    return rw[c];
}

std::vector<std::string> CsvTable::column_values(const std::string& name) const {
    size_t c = column(name);
    std::vector<std::string> out;
    out.reserve(rows_.size());
    for (const auto& r : rows_) out.push_back(r[c]);
    return out;
}

int64_t CsvTable::line_of(size_t r) const {
    CXR_CHECK(r < lines_.size(), source_, ": row ", r, " out of range (", lines_.size(), " rows)");
    return lines_[r];
}

void CsvTable::fail_field(size_t r, size_t c, const std::string& what) const {
    CXR_FAIL(source_, ":", line_of(r), ": column ", c + 1, " ('", c < header_.size() ? header_[c] : "", "'): ", what);
}

double CsvTable::get_double(size_t r, size_t c) const {
    const std::string& s = at(r, c);
    const char* b = s.c_str();
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(b, &end);
    if (s.empty() || end != b + s.size() || errno == ERANGE)
        fail_field(r, c, "'" + s + "' is not a number");
    return v;
}

int64_t CsvTable::get_int(size_t r, size_t c) const {
    const std::string& s = at(r, c);
    const char* b = s.c_str();
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(b, &end, 10);
    if (s.empty() || end != b + s.size() || errno == ERANGE)
        fail_field(r, c, "'" + s + "' is not an integer");
    return (int64_t)v;
}

}  // namespace cxr::data
