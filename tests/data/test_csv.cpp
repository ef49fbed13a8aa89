// Tests for data/csv: RFC 4180 cases written by hand (expected fields worked out from the RFC's grammar), the
// NIH bracket-header rule, error positions (file:line:column), .csv.gz through zlib, and the real NIH metadata
// file ([real-data]: counts stated in ../shared/data/README.md).
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "data/csv.h"
#include "tensor/error.h"
#include "tests/support/testing.h"

using cxr::data::CsvOptions;
using cxr::data::CsvReader;
using cxr::data::CsvTable;
namespace fs = std::filesystem;

using cxr::testing::error_of;

namespace {

fs::path temp_dir() {
    fs::path d = fs::temp_directory_path() / ("cxr_test_csv_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
}

void write_gz(const fs::path& p, const std::string& text) {
    gzFile g = gzopen(p.string().c_str(), "wb");
    REQUIRE(g != nullptr);
    REQUIRE(gzwrite(g, text.data(), (unsigned)text.size()) == (int)text.size());
    REQUIRE(gzclose(g) == Z_OK);
}

std::string read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("csv: RFC 4180 quoting, CRLF, BOM, empty lines and line numbers", "[cpu][csv]") {
    // Line 1 (after a BOM): header. Line 2: a plain record. Lines 3-4: a quoted field with an embedded CRLF,
    // a comma and doubled quotes. Line 5: empty (skipped). Line 6: empty fields. Line 7: LF only, no final newline.
    const std::string text = "\xEF\xBB\xBF" "id,name,note\r\n"
                             "1,alpha,plain\r\n"
                             "2,\"b, with comma\",\"say \"\"hi\"\"\r\nsecond line\"\r\n"
                             "\r\n"
                             "3,,\r\n"
                             "4,\"\",last";
    CsvTable t = CsvTable::parse(text, "mem.csv");
    REQUIRE(t.num_columns() == 3);
    CHECK(t.header() == std::vector<std::string>{"id", "name", "note"});  // BOM not part of "id"
    REQUIRE(t.num_rows() == 4);
    CHECK(t.at(0, "name") == "alpha");
    CHECK(t.at(1, "name") == "b, with comma");
    CHECK(t.at(1, "note") == "say \"hi\"\r\nsecond line");
    CHECK(t.at(2, "name") == "");
    CHECK(t.at(2, "note") == "");
    CHECK(t.at(3, "name") == "");
    CHECK(t.at(3, "note") == "last");
    CHECK(t.line_of(0) == 2);
    CHECK(t.line_of(1) == 3);
    CHECK(t.line_of(2) == 6);
    CHECK(t.line_of(3) == 7);
    CHECK(t.get_int(3, "id") == 4);
    CHECK(t.column_values("id") == std::vector<std::string>{"1", "2", "3", "4"});
}

TEST_CASE("csv: LF and lone-CR line ends, other delimiters, headerless tables", "[cpu][csv]") {
    CsvTable a = CsvTable::parse("a;b\n1;2\r3;\"4\n\"\n", "semi.csv", [] {
        CsvOptions o;
        o.delimiter = ';';
        return o;
    }());
    REQUIRE(a.num_rows() == 2);
    CHECK(a.at(0, "b") == "2");
    CHECK(a.at(1, "a") == "3");
    CHECK(a.at(1, "b") == "4\n");
    CHECK(a.line_of(1) == 3);  // the lone CR ended line 2

    CsvOptions no_header;
    no_header.has_header = false;
    CsvTable b = CsvTable::parse("x,1.5\ny,-2e3\n", "nh.csv", no_header);
    REQUIRE(b.num_rows() == 2);
    CHECK(b.get_double(1, "column2") == -2000.0);

    // Streaming reader: quoted flags per field.
    CsvReader r = CsvReader::from_string("\"q\",u\n", "flags.csv");
    std::vector<std::string> f;
    std::vector<bool> q;
    REQUIRE(r.next(f, &q));
    CHECK(f == std::vector<std::string>{"q", "u"});
    CHECK(q == std::vector<bool>{true, false});
    CHECK_FALSE(r.next(f));
}

TEST_CASE("csv: bracket headers as in NIH Data_Entry_2017", "[cpu][csv]") {
    // Unquoted commas inside brackets split the header like any other comma: 11 fields, and each data row has 11.
    const std::string text =
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\r\n"
        "90000001_000.png,Cardiomegaly,0,9001,57,M,PA,2500,2600,0.143,0.145\r\n";
    CsvTable t = CsvTable::parse(text, "nih.csv");
    REQUIRE(t.num_columns() == 11);
    CHECK(t.header()[7] == "OriginalImage[Width]");
    CHECK(t.header()[8] == "OriginalImage[Height]");
    CHECK(t.header()[9] == "OriginalImagePixelSpacing[x]");
    CHECK(t.header()[10] == "OriginalImagePixelSpacing[y]");
    CHECK(t.get_int(0, "OriginalImage[Width]") == 2500);
    CHECK(t.get_int(0, "OriginalImage[Height]") == 2600);
    CHECK(t.get_double(0, "OriginalImagePixelSpacing[y]") == 0.145);
    CHECK(t.at(0, "Patient Gender") == "M");
    // The group's written name is not a column; the error lists the expanded names.
    std::string msg = error_of([&] { t.column("OriginalImage[Width,Height]"); });
    CHECK(msg.find("'OriginalImage[Width]' 'OriginalImage[Height]'") != std::string::npos);

    // A quoted header field is one column, named exactly as written.
    CsvTable q = CsvTable::parse("a,\"Size[w,h]\"\n1,\"3,4\"\n", "q.csv");
    REQUIRE(q.num_columns() == 2);
    CHECK(q.at(0, "Size[w,h]") == "3,4");

    // Three sub-names, and an unclosed bracket left as it is.
    auto names = cxr::data::expand_bracket_header({"P[a", "b", "c]", "Open[x", "y"}, {});
    CHECK(names == std::vector<std::string>{"P[a]", "P[b]", "P[c]", "Open[x", "y"});
}

TEST_CASE("csv: errors name file:line:column", "[cpu][csv]") {
    // Unterminated quote: reported where it was opened (line 2, column 3).
    std::string m = error_of([] { CsvTable::parse("a,b\n1,\"open\n2,3\n", "unterminated.csv"); });
    CHECK(m.find("unterminated.csv:2:3:") != std::string::npos);
    CHECK(m.find("not closed") != std::string::npos);
    // A quote inside an unquoted field (line 2, column 5).
    m = error_of([] { CsvTable::parse("a,b\n1,ab\"c\n", "stray.csv"); });
    CHECK(m.find("stray.csv:2:5:") != std::string::npos);
    // Lenient mode keeps it.
    CsvOptions lenient;
    lenient.strict_quotes = false;
    CHECK(CsvTable::parse("a,b\n1,ab\"c\n", "stray.csv", lenient).at(0, 1) == "ab\"c");
    // Text after a closing quote (line 3, column 6).
    m = error_of([] { CsvTable::parse("a,b\n1,2\n3,\"x\"y\n", "after.csv"); });
    CHECK(m.find("after.csv:3:6:") != std::string::npos);
    // Wrong field count on line 3.
    m = error_of([] { CsvTable::parse("a,b\n1,2\n3,4,5\n", "count.csv"); });
    CHECK(m.find("count.csv:3:1:") != std::string::npos);
    CHECK(m.find("3 fields, expected 2") != std::string::npos);
    // A field that is not a number: line and column (field number and name).
    CsvTable t = CsvTable::parse("age,sex\n57,M\n\nx5,F\n", "num.csv");
    m = error_of([&] { t.get_int(1, "age"); });
    CHECK(m.find("num.csv:4: column 1 ('age')") != std::string::npos);
    // Missing column: the columns are listed.
    m = error_of([&] { t.column("Age"); });
    CHECK(m.find("no column 'Age'; columns: 'age' 'sex'") != std::string::npos);
    // Missing file and empty file.
    CHECK(error_of([] { CsvTable::read("/nonexistent/dir/x.csv"); }).find("cannot open") != std::string::npos);
    CHECK(error_of([] { CsvTable::parse("", "empty.csv"); }).find("empty.csv:1:1:") != std::string::npos);
}

TEST_CASE("csv: .csv.gz read through zlib; corrupt and truncated streams fail cleanly", "[cpu][csv]") {
    fs::path dir = temp_dir();
    const std::string text = "subject_id,race\r\n10000032,WHITE\r\n10000048,\"BLACK/AFRICAN AMERICAN\"\r\n";
    write_gz(dir / "patients.csv.gz", text);
    std::ofstream(dir / "patients.csv", std::ios::binary) << text;
    CsvTable gz = CsvTable::read((dir / "patients.csv.gz").string());
    CsvTable plain = CsvTable::read((dir / "patients.csv").string());
    REQUIRE(gz.num_rows() == 2);
    CHECK(gz.header() == plain.header());
    CHECK(gz.at(1, "race") == "BLACK/AFRICAN AMERICAN");
    CHECK(gz.at(0, "subject_id") == plain.at(0, "subject_id"));

    // A larger stream than one buffer: 20,000 rows.
    std::string big = "i,sq\n";
    for (int i = 0; i < 20000; ++i) big += std::to_string(i) + "," + std::to_string((int64_t)i * i) + "\n";
    write_gz(dir / "big.csv.gz", big);
    CsvTable b = CsvTable::read((dir / "big.csv.gz").string());
    REQUIRE(b.num_rows() == 20000);
    CHECK(b.get_int(19999, "sq") == (int64_t)19999 * 19999);
    CHECK(b.line_of(19999) == 20001);

    // Truncated: the first half of the compressed bytes.
    std::string bytes = read_bytes(dir / "big.csv.gz");
    std::ofstream(dir / "trunc.csv.gz", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    std::string m = error_of([&] { CsvTable::read((dir / "trunc.csv.gz").string()); });
    CHECK(m.find("trunc.csv.gz") != std::string::npos);
    CHECK(m.find("corrupt or truncated") != std::string::npos);
    // Corrupt: garbage after a valid gzip header.
    std::string bad = bytes.substr(0, 10) + std::string(200, '\x5a');
    std::ofstream(dir / "bad.csv.gz", std::ios::binary) << bad;
    CHECK_FALSE(error_of([&] { CsvTable::read((dir / "bad.csv.gz").string()); }).empty());
    fs::remove_all(dir);
}

TEST_CASE("csv: the real NIH Data_Entry_2017 file and splits", "[cpu][csv][real-data]") {
    CXR_SKIP_WITHOUT_REAL_DATA();
    const std::string dir = cxr::testing::real_data_dir() + "/nih1000/";
    CsvTable t = CsvTable::read(dir + "Data_Entry_2017_v2020.csv");
    REQUIRE(t.num_columns() == 11);
    REQUIRE(t.num_rows() == 1000);
    CHECK(t.header()[0] == "Image Index");
    CHECK(t.header()[7] == "OriginalImage[Width]");
    CHECK(t.header()[10] == "OriginalImagePixelSpacing[y]");
    // Figures from ../shared/data/README.md: views PA 637 / AP 363, ages 24-94, 264 patients, 499 No Finding.
    std::map<std::string, int> views;
    std::map<std::string, int> patients;
    int64_t age_min = 1000, age_max = -1;
    int no_finding = 0;
    for (size_t r = 0; r < t.num_rows(); ++r) {
        views[t.at(r, "View Position")]++;
        patients[t.at(r, "Patient ID")]++;
        age_min = std::min(age_min, t.get_int(r, "Patient Age"));
        age_max = std::max(age_max, t.get_int(r, "Patient Age"));
        if (t.at(r, "Finding Labels") == "No Finding") no_finding++;
        CHECK(t.get_int(r, "OriginalImage[Width]") > 0);
        CHECK(t.get_double(r, "OriginalImagePixelSpacing[x]") > 0.0);
    }
    CHECK(views["PA"] == 637);
    CHECK(views["AP"] == 363);
    CHECK(age_min == 24);
    CHECK(age_max == 94);
    CHECK(patients.size() == 264);
    CHECK(no_finding == 499);
    // The first data row as it stands in the file.
    CHECK(t.at(0, "Image Index") == "00000001_000.png");
    CHECK(t.get_int(0, "OriginalImage[Width]") == 2682);
    CHECK(t.get_int(0, "OriginalImage[Height]") == 2749);

    CsvTable s = CsvTable::read(dir + "splits.csv");
    std::map<std::string, int> splits;
    for (const auto& v : s.column_values("split")) splits[v]++;
    CHECK(splits["train"] == 700);
    CHECK(splits["valid"] == 100);
    CHECK(splits["test"] == 200);
}
