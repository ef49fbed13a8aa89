// Tests of the CLIP BPE tokenizer (diffusion/clip_tokenizer.h).
// [cpu]: bytes_to_unicode properties (checked against the rule written out independently here); normalisation
// (HTML unescape twice with Python's html.unescape rules, the ftfy subset, whitespace, lower case); pre-tokeniser
// splits (contractions, digits, punctuation runs, special tokens); a tiny invented merges file and a Hugging Face
// folder written by the test, with ids computed by hand; encode_for_model truncation and padding; decode; errors
// for bad files. [real-data] (../shared/data/clip): all 2,009 reference tokenizations reproduced exactly, the vocabulary
// layout of the real merges file, and the IU-report prompts of tests/data/test_prompts.cpp fitted with the real
// tokenizer as the counter (every prompt <= 75 BPE tokens) plus a check that data/prompts.cpp's conservative
// counter never undercounts the real tokenizer on these texts.
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "data/csv.h"
#include "data/prompts.h"
#include "diffusion/clip_tokenizer.h"
#include "tests/support/testing.h"

using namespace cxr::diffusion;
using V = std::vector<int>;
using S = std::vector<std::string>;

namespace {

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

void write_gz(const std::string& path, const std::string& text) {
    gzFile gz = gzopen(path.c_str(), "wb");
    REQUIRE(gz != nullptr);
    REQUIRE(gzwrite(gz, text.data(), (unsigned)text.size()) == (int)text.size());
    REQUIRE(gzclose(gz) == Z_OK);
}

// The invented merges of the tiny tests (ranks 0..5), then a line that is not a merge: it must never be read
// when only 6 merges are requested.
const char* kTinyMerges =
    "#version: test\n"
    "l o\n"         // 0 -> id 512 "lo"
    "lo w</w>\n"    // 1 -> 513 "low</w>"
    "e r</w>\n"     // 2 -> 514 "er</w>"
    "lo w\n"        // 3 -> 515 "low"
    "low er</w>\n"  // 4 -> 516 "lower</w>"
    "a a\n"         // 5 -> 517 "aa"
    "not a merge line\n";
constexpr int kTinyMergeCount = 6;  // vocabulary: 512 byte symbols + 6 merges + start 518 + end 519

// bytes_to_unicode written out here from its definition (independent of the library's table): the code point of
// each byte, and the byte order of ids 0..255.
char32_t ref_byte_cp(int b) {
    auto printable = [](int x) { return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255); };
    if (printable(b)) return (char32_t)b;
    int n = 0;
    for (int x = 0; x < b; ++x) n += printable(x) ? 0 : 1;
    return (char32_t)(256 + n);
}
std::vector<int> ref_byte_order() {
    std::vector<int> v;
    for (int b = 33; b <= 126; ++b) v.push_back(b);
    for (int b = 161; b <= 172; ++b) v.push_back(b);
    for (int b = 174; b <= 255; ++b) v.push_back(b);
    for (int b = 0; b < 256; ++b)
        if (std::find(v.begin(), v.end(), b) == v.end()) v.push_back(b);
    return v;
}
std::string utf8(char32_t c) { return u32_to_utf8(std::u32string(1, c)); }

// The tiny vocabulary in the CLIP layout (id -> string), built here from the rule.
std::vector<std::string> tiny_vocab() {
    std::vector<std::string> v;
    const auto order = ref_byte_order();
    for (int b : order) v.push_back(utf8(ref_byte_cp(b)));
    for (int k = 0; k < 256; ++k) v.push_back(v[k] + "</w>");
    for (const char* m : {"lo", "low</w>", "er</w>", "low", "lower</w>", "aa"}) v.push_back(m);
    v.push_back("<|startoftext|>");
    v.push_back("<|endoftext|>");
    return v;
}

// A Hugging Face tokenizer folder with the tiny vocabulary under REVERSED ids (id' = 519 - id), so that the test
// sees the ids come from vocab.json. `drop` removes one token (the ids stay dense).
void write_hf_folder(const std::string& dir, const std::string& drop = "", const std::string& special_map = "") {
    std::filesystem::create_directories(dir);
    auto v = tiny_vocab();
    std::reverse(v.begin(), v.end());
    if (!drop.empty()) v.erase(std::find(v.begin(), v.end(), drop));
    nlohmann::json j = nlohmann::json::object();
    for (size_t i = 0; i < v.size(); ++i) j[v[i]] = i;
    write_text(dir + "/vocab.json", j.dump());
    std::string merges = kTinyMerges;
    merges = merges.substr(0, merges.find("not a merge"));
    merges.replace(0, std::string("#version: test").size(), "#version: 0.2");
    write_text(dir + "/merges.txt", merges);
    if (!special_map.empty()) write_text(dir + "/special_tokens_map.json", special_map);
}

}  // namespace

TEST_CASE("clip tokenizer: bytes_to_unicode is the reference's reversible byte map", "[cpu][diffusion][tokenizer]") {
    const auto& to = clip_byte_to_unicode();
    const auto& order = clip_byte_order();
    std::set<char32_t> seen;
    for (int b = 0; b < 256; ++b) {
        CHECK(to[b] == ref_byte_cp(b));
        seen.insert(to[b]);
    }
    CHECK(seen.size() == 256);  // a bijection
    // Printable bytes map to themselves, the others to U+0100.. in increasing byte order.
    CHECK(to['!'] == U'!');
    CHECK(to['~'] == U'~');
    CHECK(to[0xA1] == 0xA1);
    CHECK(to[0xAC] == 0xAC);
    CHECK(to[0xAE] == 0xAE);
    CHECK(to[0xFF] == 0xFF);
    CHECK(to[0x00] == 0x100);
    CHECK(to[0x20] == 0x120);  // space -> 'Ġ'
    CHECK(to[0x7F] == 0x121);
    CHECK(to[0xA0] == 0x142);
    CHECK(to[0xAD] == 0x143);  // the last one
    const auto ref = ref_byte_order();
    for (int k = 0; k < 256; ++k) CHECK((int)order[k] == ref[k]);
    CHECK(order[0] == '!');
    CHECK(order[93] == '~');
    CHECK(order[94] == 0xA1);
    CHECK(order[106] == 0xAE);
    CHECK(order[187] == 0xFF);
    CHECK(order[188] == 0x00);
    CHECK(order[255] == 0xAD);
}

TEST_CASE("clip tokenizer: UTF-8 decoding replaces ill-formed sequences", "[cpu][diffusion][tokenizer]") {
    CHECK(utf8_to_u32("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") == std::u32string{U'a', 0xE9, 0x20AC, 0x1F600});
    CHECK(utf8_to_u32("\xC3") == std::u32string{0xFFFD});              // truncated
    CHECK(utf8_to_u32("\xE2\x82x") == std::u32string{0xFFFD, U'x'});    // one U+FFFD for the maximal subpart
    CHECK(utf8_to_u32("\x80\xBF") == std::u32string{0xFFFD, 0xFFFD});  // stray continuation bytes
    CHECK(utf8_to_u32("\xED\xA0\x80") == std::u32string{0xFFFD, 0xFFFD, 0xFFFD});  // a surrogate is ill-formed
    CHECK(u32_to_utf8(std::u32string{0x120, 0x1F600}) == "\xC4\xA0\xF0\x9F\x98\x80");
}

TEST_CASE("clip tokenizer: normalisation: html unescape twice then ftfy subset and whitespace and lower case",
          "[cpu][diffusion][tokenizer]") {
    // Python html.unescape rules, one pass.
    CHECK(html_unescape("&amp;amp;") == "&amp;");
    CHECK(html_unescape("&lt;b&gt; &quot;x&quot; &apos;y&apos;") == "<b> \"x\" 'y'");
    CHECK(html_unescape("&#39;&#x27;&#X27&#65") == "''\x27" "A");
    CHECK(html_unescape("&ampx &lt3 &amp,y") == "&x <3 &,y");  // legacy names without ';', longest prefix
    CHECK(html_unescape("&apos &notanentity; & &; &#; &#x;") == "&apos &notanentity; & &; &#; &#x;");
    CHECK(html_unescape("&#128;&#x9F;") == "\xE2\x82\xAC\xC5\xB8");  // Windows-1252 for 0x80..0x9F: € Ÿ
    CHECK(html_unescape("a&#1;b&#11;c") == "abc");                   // invalid code points removed
    CHECK(html_unescape("&#0;&#xD800;&#x110000;&#99999999999999;") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(html_unescape("&nbsp;") == "\xC2\xA0");
    // The reference unescapes twice, then collapses whitespace, strips and lower-cases.
    CHECK(clip_normalize("&amp;amp;") == "&");
    CHECK(clip_normalize("&amp;amp;amp;") == "&amp;");
    CHECK(clip_normalize("  Hello\t\n  WORLD \r\n ") == "hello world");
    CHECK(clip_normalize("a&nbsp;&nbsp;b") == "a b");  // nbsp is whitespace
    CHECK(clip_normalize("a\xE2\x80\x83\xC2\xA0 b") == "a b");  // em space, nbsp
    CHECK(clip_normalize("") == "");
    CHECK(clip_normalize(" \t ") == "");
    // ftfy subset: curly quotes, ligatures, fullwidth ASCII, control characters.
    CHECK(clip_normalize("Patient\xE2\x80\x99s \xE2\x80\x9C" "clear\xE2\x80\x9D") == "patient's \"clear\"");
    CHECK(clip_normalize("\xEF\xAC\x81ndings") == "findings");           // U+FB01
    CHECK(clip_normalize("\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\x91") == "ab1");  // fullwidth A B 1
    CHECK(clip_normalize("\xEF\xBB\xBF" "a\x01\x7F" "b") == "ab");       // BOM, controls
    // Lower case (exact for ASCII; Latin-1, Greek with final sigma, Cyrillic; dotted capital I).
    CHECK(clip_normalize("CAPS and MiXeD") == "caps and mixed");
    CHECK(clip_normalize("\xC3\x80\xC3\x89\xC3\x8E") == "\xC3\xA0\xC3\xA9\xC3\xAE");  // ÀÉÎ -> àéî
    CHECK(clip_normalize("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xCE\xA3\xCE\x9F") ==
          "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82 \xCF\x83\xCE\xBF");  // ΟΔΟΣ ΣΟ -> οδος σο (final sigma)
    CHECK(clip_normalize("\xD0\x94\xD0\x81") == "\xD0\xB4\xD1\x91");  // ДЁ -> дё
    CHECK(clip_normalize("\xC4\xB0") == "i\xCC\x87");                 // İ -> i + U+0307
}

TEST_CASE("clip tokenizer: pre-tokeniser splits", "[cpu][diffusion][tokenizer]") {
    CHECK(clip_pretokenize("don't can't it's") == S{"don", "'t", "can", "'t", "it", "'s"});
    CHECK(clip_pretokenize("we're they've i'm you'll he'd") ==
          S{"we", "'re", "they", "'ve", "i", "'m", "you", "'ll", "he", "'d"});
    CHECK(clip_pretokenize("'sun ''s") == S{"'s", "un", "''", "s"});  // no backtracking into a punctuation run
    CHECK(clip_pretokenize("!'s") == S{"!'", "s"});
    CHECK(clip_pretokenize("12.5cm") == S{"1", "2", ".", "5", "cm"});  // one digit per piece
    CHECK(clip_pretokenize("hello!!! ...wait") == S{"hello", "!!!", "...", "wait"});
    CHECK(clip_pretokenize("x-xxxx") == S{"x", "-", "xxxx"});
    CHECK(clip_pretokenize("a_b") == S{"a", "_", "b"});  // '_' is not a letter
    CHECK(clip_pretokenize("<|startoftext|>hi<|endoftext|>") == S{"<|startoftext|>", "hi", "<|endoftext|>"});
    CHECK(clip_pretokenize("<|EndOfText|>") == S{"<|EndOfText|>"});  // case-insensitive
    CHECK(clip_pretokenize(".<|endoftext|>") == S{".<|", "endoftext", "|>"});  // only at the start of a piece
    CHECK(clip_pretokenize("  a \t b  ") == S{"a", "b"});
    CHECK(clip_pretokenize("").empty());
    // Non-ASCII: letters, numbers, symbols.
    CHECK(clip_pretokenize("caf\xC3\xA9 na\xC3\xAFve") == S{"caf\xC3\xA9", "na\xC3\xAFve"});
    CHECK(clip_pretokenize("3\xC2\xB2\xC2\xBD") == S{"3", "\xC2\xB2", "\xC2\xBD"});  // ² ½ are numbers
    CHECK(clip_pretokenize("a\xE2\x80\x94\xE2\x82\xAC" "b") == S{"a", "\xE2\x80\x94\xE2\x82\xAC", "b"});  // —€ one run
    CHECK(clip_char_class(U'a') == ClipCharClass::letter);
    CHECK(clip_char_class(U'7') == ClipCharClass::number);
    CHECK(clip_char_class(U'\'') == ClipCharClass::other);
    CHECK(clip_char_class(0xA0) == ClipCharClass::space);
    CHECK(clip_char_class(0x4E2D) == ClipCharClass::letter);  // 中
    CHECK(clip_char_class(0x0301) == ClipCharClass::other);   // combining acute
    CHECK(clip_char_class(0x1F600) == ClipCharClass::other);  // emoji
    CHECK(clip_char_class(0x0663) == ClipCharClass::number);  // Arabic-Indic three
}

TEST_CASE("clip tokenizer: a tiny invented merges file, ids by hand", "[cpu][diffusion][tokenizer]") {
    cxr::testing::TempDir dir("clip_tok");
    write_text(dir / "merges.txt", kTinyMerges);
    write_gz(dir / "merges.txt.gz", kTinyMerges);
    for (const std::string file : {"merges.txt", "merges.txt.gz"}) {
        INFO(file);
        const ClipTokenizer tok = ClipTokenizer::from_clip_merges(dir / file, kTinyMergeCount);
        CHECK(tok.vocab_size() == 520);
        CHECK(tok.num_merges() == 6);
        CHECK(tok.start_id() == 518);
        CHECK(tok.end_id() == 519);
        CHECK(tok.pad_id() == 519);
        const auto vocab = tiny_vocab();
        for (int id = 0; id < 520; ++id) CHECK(tok.token(id) == vocab[id]);
        CHECK(tok.token_id("low") == 515);
        CHECK(tok.token_id("zz") == -1);
        // Byte ids: 'x' -> x - 33 for '!'..'~'; + 256 with </w>.
        CHECK(tok.encode("low") == V{513});                // l o w</w> -> lo w</w> -> low</w>
        CHECK(tok.encode("lower") == V{516});              // rank 0, then 2 (er</w>), 3 (low), 4
        CHECK(tok.encode("lowest") == V{515, 68, 82, 339});  // low e s t</w>
        CHECK(tok.bpe_symbols("lowest") == S{"low", "e", "s", "t</w>"});
        CHECK(tok.encode("aaaaa") == V{517, 517, 320});    // non-overlapping, left to right: aa aa a</w>
        CHECK(tok.encode("Hello, World!") == V{71, 68, 75, 75, 334, 267, 86, 78, 81, 75, 323, 256});
        CHECK(tok.encode("LOW low") == V{513, 513});
        CHECK(tok.encode("\xC3\xA9") == V{127, 358});      // é = C3 A9: 'Ã' (id 127), '©'</w> (102 + 256)
        CHECK(tok.encode("\xE2\x82\xAC") == V{158, 224, 361});  // € = E2 82 AC; 0x82 is the 37th unprintable byte
        CHECK(tok.encode("<|endoftext|>") == V{519});
        CHECK(tok.encode("a<|startoftext|>") == V{320, 518});
        CHECK(tok.encode("").empty());
        CHECK(tok.encode(" \n ").empty());
        CHECK(tok.count_tokens("lowest lower") == 5);
        CHECK(tok.token_counter()("lowest") == 4);
        // decode: the reference's (symbols back to bytes, "</w>" -> " ").
        CHECK(tok.decode({513, 516}) == "low lower ");
        CHECK(tok.decode({518, 513, 519}) == "<|startoftext|>low <|endoftext|>");
        CHECK(tok.decode({518, 513, 519, 519}, true) == "low ");
        CHECK(tok.decode(tok.encode("\xC3\xA9 \xE2\x82\xAC")) == "\xC3\xA9 \xE2\x82\xAC ");
        CHECK(tok.decode({127}) == "\xEF\xBF\xBD");  // a lone lead byte -> U+FFFD
        CHECK_THROWS_WITH(tok.decode({520}), Catch::Contains("outside the vocabulary"));
        CHECK_THROWS_WITH(tok.decode({-1}), Catch::Contains("outside the vocabulary"));
    }
}

TEST_CASE("clip tokenizer: encode_for_model truncates keeping the end token and pads", "[cpu][diffusion][tokenizer]") {
    cxr::testing::TempDir dir("clip_tok");
    write_text(dir / "merges.txt", kTinyMerges);
    const ClipTokenizer tok = ClipTokenizer::from_clip_merges(dir / "merges.txt", kTinyMergeCount);
    CHECK(tok.encode_for_model("low", 5) == V{518, 513, 519, 519, 519});  // SD 1.x: pad with <|endoftext|>
    CHECK(tok.encode_for_model("low", 5, 0) == V{518, 513, 519, 0, 0});   // SD 2.x: pad with "!" (id 0)
    CHECK(tok.encode_for_model("low low", 4) == V{518, 513, 513, 519});   // exactly full
    CHECK(tok.encode_for_model("low low low low", 4) == V{518, 513, 513, 519});  // truncated, end kept last
    CHECK(tok.encode_for_model("low", 2) == V{518, 519});
    CHECK(tok.encode_for_model("", 3) == V{518, 519, 519});
    CHECK(tok.encode_for_model("low").size() == 77);
    CHECK_THROWS_WITH(tok.encode_for_model("low", 1), Catch::Contains("at least the start and end"));
    CHECK_THROWS_WITH(tok.encode_for_model("low", 5, 520), Catch::Contains("outside the vocabulary"));
}

TEST_CASE("clip tokenizer: a Hugging Face folder takes its ids from vocab.json", "[cpu][diffusion][tokenizer]") {
    cxr::testing::TempDir dir("clip_tok_hf");
    write_hf_folder(dir / "sd15/tokenizer");
    const ClipTokenizer tok = ClipTokenizer::from_hf_folder(dir / "sd15");  // the pipeline folder
    CHECK(tok.vocab_size() == 520);
    CHECK(tok.start_id() == 1);  // 519 - 518
    CHECK(tok.end_id() == 0);
    CHECK(tok.encode("lower lowest") == V{519 - 516, 519 - 515, 519 - 68, 519 - 82, 519 - 339});
    CHECK(tok.encode_for_model("low", 4) == V{1, 519 - 513, 0, 0});
    CHECK(tok.decode(tok.encode("lowest")) == "lowest ");
    // The tokenizer folder itself works too; pad_token from special_tokens_map.json (SD 2.x uses "!").
    write_hf_folder(dir / "sd2", "", R"({"pad_token": {"content": "!", "lstrip": false}})");
    const ClipTokenizer sd2 = ClipTokenizer::from_hf_folder(dir / "sd2");
    CHECK(sd2.pad_id() == 519);  // "!" is id 0 in the CLIP layout, reversed here
    CHECK(sd2.encode_for_model("low", 4) == V{1, 519 - 513, 0, 519});
    write_hf_folder(dir / "plain_pad", "", R"({"pad_token": "<|endoftext|>"})");
    CHECK(ClipTokenizer::from_hf_folder(dir / "plain_pad").pad_id() == 0);
}

TEST_CASE("clip tokenizer: bad files fail with clear messages", "[cpu][diffusion][tokenizer]") {
    using Catch::Contains;
    cxr::testing::TempDir dir("clip_tok_err");
    auto clip = [&](const std::string& text, int n = kTinyMergeCount) {
        write_text(dir / "m.txt", text);
        return ClipTokenizer::from_clip_merges(dir / "m.txt", n);
    };
    CHECK_THROWS_WITH(ClipTokenizer::from_clip_merges(dir / "missing.txt.gz"), Contains("not found"));
    CHECK_THROWS_WITH(clip(""), Contains("empty"));
    CHECK_THROWS_WITH(clip("l o\nlo w</w>\n"), Contains("version header"));
    CHECK_THROWS_WITH(clip("#version: 0.2\nl o\nlo w x\n"), Contains("m.txt:3:") && Contains("two symbols"));
    CHECK_THROWS_WITH(clip("#version: 0.2\nl o\n\nlo w\n"), Contains("m.txt:3:"));
    CHECK_THROWS_WITH(clip("#version: 0.2\nl  o\n"), Contains("m.txt:2:"));
    const std::string six = std::string(kTinyMerges).substr(0, std::string(kTinyMerges).find("not a merge"));
    CHECK_THROWS_WITH(clip(six, 100), Contains("holds only 6 merges") && Contains("expected 100"));
    CHECK_THROWS_WITH(clip(kTinyMerges, 7), Contains("m.txt:8:"));  // the 7th merge line is not a merge
    CHECK_THROWS_WITH(clip("#version: 0.2\nl o\nl o\n", 2), Contains("duplicate merge") && Contains("line 2"));
    CHECK_THROWS_WITH(clip("#version: 0.2\nzz q\n", 1), Contains("m.txt:2:") && Contains("\"zz\" is not in"));
    CHECK_NOTHROW(clip("#version: 0.2\r\nl o\r\n", 1));  // CRLF line ends
    // A truncated gzip stream.
    {
        std::string big;
        for (int i = 0; i < 20000; ++i) big += "l o" + std::to_string(i) + "\n";
        write_gz(dir / "t.gz", "#version: 0.2\n" + big);
        std::string bytes;
        {
            std::ifstream in(dir / "t.gz", std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), {});
        }
        write_text(dir / "t.gz", bytes.substr(0, bytes.size() / 2));
        CHECK_THROWS_WITH(ClipTokenizer::from_clip_merges(dir / "t.gz", 10), Contains("cannot read"));
    }
    // Hugging Face folders.
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "nowhere"), Contains("not found"));
    std::filesystem::create_directories(dir / "empty");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "empty"), Contains("no vocab.json"));
    write_hf_folder(dir / "no_merges");
    std::filesystem::remove(dir / "no_merges/merges.txt");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "no_merges"), Contains("merges.txt is missing"));
    write_hf_folder(dir / "no_result", "lower</w>");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "no_result"),
                      Contains("merges.txt:6:") && Contains("lacks its result \"lower</w>\""));
    write_hf_folder(dir / "no_start", "<|startoftext|>");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "no_start"), Contains("lacks <|startoftext|>"));
    write_hf_folder(dir / "no_byte", "a</w>");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "no_byte"), Contains("byte symbol \"a</w>\""));
    write_hf_folder(dir / "bad_json");
    write_text(dir / "bad_json/vocab.json", "{\"a\": 0,");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "bad_json"), Contains("not valid JSON"));
    write_text(dir / "bad_json/vocab.json", "{\"a\": \"zero\"}");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "bad_json"), Contains("not an integer"));
    write_text(dir / "bad_json/vocab.json", "{\"a\": 0, \"b\": 5}");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "bad_json"), Contains("outside 0..1"));
    write_hf_folder(dir / "no_header");
    write_text(dir / "no_header/merges.txt", "l o\n");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "no_header"), Contains("merges.txt:1:"));
    write_hf_folder(dir / "bad_pad", "", R"({"pad_token": "<pad>"})");
    CHECK_THROWS_WITH(ClipTokenizer::from_hf_folder(dir / "bad_pad"), Contains("pad_token \"<pad>\" is not in"));
}

// ------------------------------------------------------------------------------------------------------------------
// [real-data]
// ------------------------------------------------------------------------------------------------------------------

namespace {

std::string clip_dir() { return (std::filesystem::path(cxr::testing::real_data_dir()) / "clip").string(); }

bool have_clip_data() {
    const std::string d = cxr::testing::real_data_dir();
    return !d.empty() && std::filesystem::exists(std::filesystem::path(d) / "clip" / "bpe_simple_vocab_16e6.txt.gz");
}

#define SKIP_WITHOUT_CLIP_DATA()                                                                                 \
    do {                                                                                                         \
        CXR_SKIP_WITHOUT_REAL_DATA();                                                                            \
        if (!have_clip_data()) CXR_SKIP("../shared/data/clip (the CLIP merges file) not found");                 \
    } while (0)

const ClipTokenizer& real_tokenizer() {
    static const ClipTokenizer tok = ClipTokenizer::from_clip_merges(clip_dir() + "/bpe_simple_vocab_16e6.txt.gz");
    return tok;
}

std::string ids_str(const std::vector<int>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

}  // namespace

TEST_CASE("clip tokenizer: the vocabulary of the real CLIP merges file", "[real-data][diffusion][tokenizer]") {
    SKIP_WITHOUT_CLIP_DATA();
    const ClipTokenizer& tok = real_tokenizer();
    CHECK(tok.vocab_size() == 49408);
    CHECK(tok.num_merges() == kClipNumMerges);
    CHECK(tok.start_id() == kClipStartId);
    CHECK(tok.end_id() == kClipEndId);
    CHECK(tok.token(0) == "!");
    CHECK(tok.token(256) == "!</w>");
    CHECK(tok.token(512) == "in");            // the first merge, "i n" (file line 2)
    CHECK(tok.token(49405) == "jekyll</w>");  // the last merge used, "jeky ll</w>" (file line 48,895)
    CHECK(tok.token_id("habib</w>") == -1);   // line 48,896 onwards is not used
    CHECK(tok.token(kClipStartId) == "<|startoftext|>");
    CHECK(tok.token(kClipEndId) == "<|endoftext|>");
}

TEST_CASE("clip tokenizer: all 2009 reference tokenizations reproduced exactly", "[real-data][diffusion][tokenizer]") {
    SKIP_WITHOUT_CLIP_DATA();
    std::ifstream in(clip_dir() + "/tokenizer_cases.json");
    REQUIRE(in.good());
    const nlohmann::json cases = nlohmann::json::parse(in);
    REQUIRE(cases.size() == 2009);
    const auto t0 = std::chrono::steady_clock::now();
    const ClipTokenizer tok = ClipTokenizer::from_clip_merges(clip_dir() + "/bpe_simple_vocab_16e6.txt.gz");
    const auto t1 = std::chrono::steady_clock::now();
    int mismatches = 0;
    for (const auto& c : cases) {
        const std::string text = c.at("text").get<std::string>();
        const std::vector<int> expected = c.at("ids").get<std::vector<int>>();
        const std::vector<int> got = tok.encode(text);
        if (got != expected) {
            if (mismatches == 0)
                FAIL_CHECK("first mismatch: text \"" << text << "\"\n expected " << ids_str(expected) << "\n got      "
                                                     << ids_str(got));
            ++mismatches;
        }
        // The model input of the same text: start, ids, end, padding with <|endoftext|> (or truncated).
        const std::vector<int> model = tok.encode_for_model(text);
        REQUIRE(model.size() == 77);
        CHECK(model.front() == kClipStartId);
        const size_t n = std::min<size_t>(expected.size(), 75);
        CHECK(std::equal(expected.begin(), expected.begin() + n, model.begin() + 1));
        CHECK(model[n + 1] == kClipEndId);
        if (n + 2 < 77) CHECK(std::all_of(model.begin() + n + 2, model.end(), [](int id) { return id == kClipEndId; }));
    }
    const auto t2 = std::chrono::steady_clock::now();
    for (const auto& c : cases) (void)tok.encode(c.at("text").get<std::string>());  // warm word cache
    const auto t3 = std::chrono::steady_clock::now();
    CHECK(mismatches == 0);
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    WARN("CLIP tokenizer: load " << ms(t0, t1) << " ms; 2,009 cases x2 (encode + model input) " << ms(t1, t2)
                                 << " ms cold, encode " << ms(t2, t3) << " ms warm; " << mismatches << " mismatches");
}

TEST_CASE("clip tokenizer: IU prompts fit 77 positions with the real tokenizer and the conservative counter "
          "never undercounts it",
          "[real-data][diffusion][tokenizer][prompts]") {
    SKIP_WITHOUT_CLIP_DATA();
    using namespace cxr::data;
    const ClipTokenizer& tok = real_tokenizer();
    const auto dir = std::filesystem::path(cxr::testing::real_data_dir());
    const CsvTable t = CsvTable::read((dir / "reports" / "iu_xray_reports.csv").string());
    REQUIRE(t.num_rows() == 3921);
    // The sources exactly as tests/data/test_prompts.cpp builds them (age 18 + r % 73, male, white; seed 0).
    std::vector<Record> src;
    for (size_t r = 0; r < t.num_rows(); ++r) {
        Record rec;
        rec.age = 18 + (double)(r % 73);
        rec.report = t.at(r, "impression");
        rec.sex = Sex::male;
        rec.race = Race::white;
        src.push_back(rec);
    }
    const TokenCounter real = tok.token_counter();
    ExpansionStats st_real, st_cons;
    const auto t0 = std::chrono::steady_clock::now();
    const auto items = balanced_expansion(src, 0, real, &st_real);
    const auto t1 = std::chrono::steady_clock::now();
    REQUIRE(items.size() == 8 * (src.size() - st_real.skipped_no_report));
    int too_long = 0, undercounts = 0;
    std::string first_under;
    auto check_conservative = [&](const std::string& text, int ref) {
        const int est = conservative_token_count(text);
        if (est < ref) {
            if (undercounts++ == 0)
                first_under = "\"" + text + "\": conservative " + std::to_string(est) + " < real " + std::to_string(ref);
        }
    };
    for (const auto& p : items) {
        const int n = tok.count_tokens(p.prompt);
        if (n > kClipTextTokens) {
            if (too_long++ == 0) FAIL_CHECK("prompt of " << n << " tokens: \"" << p.prompt << "\"");
        }
        CHECK(p.prompt.rfind(prompt_prefix(p.age, p.race, p.sex), 0) == 0);  // the prefix is never cut
        const std::vector<int> model = tok.encode_for_model(p.prompt);
        if (n <= kClipTextTokens) CHECK(model[n + 1] == kClipEndId);  // nothing truncated
        check_conservative(p.prompt, n);
    }
    // The raw impressions too, and the prompts the conservative counter fits (they must fit the real tokenizer).
    for (const auto& r : src) check_conservative(r.report, tok.count_tokens(r.report));
    const auto cons_items = balanced_expansion(src, 0, {}, &st_cons);
    int cons_too_long = 0;
    for (const auto& p : cons_items) cons_too_long += tok.count_tokens(p.prompt) > kClipTextTokens ? 1 : 0;
    CHECK(too_long == 0);
    CHECK(cons_too_long == 0);
    INFO("first undercount: " << first_under);
    CHECK(undercounts == 0);
    WARN("IU balanced expansion with the real CLIP tokenizer: " << items.size() << " prompts, " << st_real.shortened
                                                                << " shortened (conservative counter: "
                                                                << st_cons.shortened << "), "
                                                                << std::chrono::duration<double>(t1 - t0).count()
                                                                << " s; conservative undercounts: " << undercounts);
}
