// CSV reading: RFC 4180 records (https://www.rfc-editor.org/rfc/rfc4180) from plain or gzip-compressed files.
//
// What the reader accepts
//   - fields separated by `delimiter` (',' by default); records end at CRLF, LF or a lone CR;
//   - quoted fields ("...") holding delimiters, line breaks and doubled quotes ("" stands for one ");
//     line breaks inside a quoted field are kept verbatim;
//   - a UTF-8 byte-order mark (EF BB BF) at the start of the file is dropped;
//   - empty lines (no characters at all between two line breaks) are skipped;
//   - the last record may end without a line break;
//   - `.csv.gz` (any gzip stream, detected by its magic bytes, not by the name) is decompressed on the fly with
//     zlib (RFC 1952), so MIMIC's gzipped tables are read as they are shipped.
// What it rejects (cxr::Error naming file:line:column, 1-based, column counted in bytes of the physical line)
//   - a quote inside an unquoted field (RFC 4180 §2.5) unless `strict_quotes` is false;
//   - anything but a delimiter or a line break after a closing quote (RFC 4180 §2.7);
//   - a quoted field still open at the end of the file (the error names where it was opened);
//   - a record whose field count differs from the header's (CsvTable);
//   - a corrupt or truncated gzip stream (zlib's message is included).
//
// Headers with commas inside brackets (NIH ChestX-ray14's Data_Entry_2017 file):
//   Image Index,...,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]
// The header is split by the same RFC 4180 rules as every other record, so the unquoted commas inside the
// brackets separate fields: the header has 11 fields and so does every data row ("...,2682,2749,0.143,0.143").
// The number of columns is therefore always the header's RFC 4180 field count. Only the *names* are rebuilt:
// a run of unquoted header fields that opens a '[' in its first field and closes it with ']' in its last
// field ("OriginalImage[Width", "Height]") is a bracket group Base[s1,...,sk]; its k columns are named
// "Base[s1]", ..., "Base[sk]" (here "OriginalImage[Width]" and "OriginalImage[Height]"). A quoted header field
// ("OriginalImage[Width,Height]") is one field and so one column, named exactly as written. Looking up the
// group's full name ("OriginalImage[Width,Height]") fails with a message listing the expanded names.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cxr::data {

struct CsvOptions {
    char delimiter = ',';
    bool has_header = true;
    bool expand_bracket_headers = true;  // the NIH rule above
    bool strict_quotes = true;           // false: a quote inside an unquoted field is kept as a character
};

// Streams records one at a time from a plain or gzip-compressed file (or from an in-memory string).
class CsvReader {
public:
    CsvReader(const std::string& path, CsvOptions options = {});
    // Reads text already in memory; `source_name` is what errors call it.
    static CsvReader from_string(const std::string& text, const std::string& source_name, CsvOptions options = {});
    ~CsvReader();
    CsvReader(CsvReader&&) noexcept;
    CsvReader& operator=(CsvReader&&) noexcept;

    // Reads the next record into `fields`; false at the end of the input. `quoted[i]` tells whether field i was
    // quoted (used for the bracket-header rule).
    bool next(std::vector<std::string>& fields, std::vector<bool>* quoted = nullptr);
    int64_t record_line() const { return record_line_; }  // physical line where the last record started
    const std::string& source() const { return source_; }

private:
    CsvReader() = default;
    int get();   // next byte or -1
    int peek();  // next byte without consuming it, or -1
    [[noreturn]] void fail(int64_t line, int64_t column, const std::string& what) const;

    struct Source;
    std::unique_ptr<Source> src_;
    std::string source_;
    CsvOptions opt_;
    int64_t line_ = 1, column_ = 0;  // position of the last byte read
    int64_t record_line_ = 0;
    bool started_ = false;
};

// A whole table in memory: header names and rows of string fields, each row remembering its source line.
class CsvTable {
public:
    static CsvTable read(const std::string& path, CsvOptions options = {});
    static CsvTable parse(const std::string& text, const std::string& source_name, CsvOptions options = {});

    const std::string& source() const { return source_; }
    const std::vector<std::string>& header() const { return header_; }
    size_t num_rows() const { return rows_.size(); }
    size_t num_columns() const { return header_.size(); }

    bool has_column(const std::string& name) const;
    size_t column(const std::string& name) const;  // throws listing the columns when absent

    const std::vector<std::string>& row(size_t r) const;
    const std::string& at(size_t r, size_t c) const;
    const std::string& at(size_t r, const std::string& name) const { return at(r, column(name)); }
    std::vector<std::string> column_values(const std::string& name) const;
    int64_t line_of(size_t r) const;  // physical line (1-based) where row r starts in the source

    // Numeric access; a field that is not a number throws naming file:line:column (the column is the 1-based
    // field number and the column's name).
    double get_double(size_t r, size_t c) const;
    int64_t get_int(size_t r, size_t c) const;
    double get_double(size_t r, const std::string& name) const { return get_double(r, column(name)); }
    int64_t get_int(size_t r, const std::string& name) const { return get_int(r, column(name)); }

private:
    static CsvTable from_reader(CsvReader& reader, const CsvOptions& options);
    [[noreturn]] void fail_field(size_t r, size_t c, const std::string& what) const;

    std::string source_;
    std::vector<std::string> header_;
    std::map<std::string, size_t> index_;
    std::map<std::string, std::vector<std::string>> groups_;  // bracket-group full name -> expanded names
    std::vector<std::vector<std::string>> rows_;
    std::vector<int64_t> lines_;
};

// Header names by the bracket rule above (exposed for tests): fields as split by RFC 4180 and whether each was
// quoted. Returns one name per field.
std::vector<std::string> expand_bracket_header(const std::vector<std::string>& fields, const std::vector<bool>& quoted,
                                               std::map<std::string, std::vector<std::string>>* groups = nullptr);

}  // namespace cxr::data
