// The CLIP BPE tokenizer (rules, sources and approximations in diffusion/clip_tokenizer.h): file loading (CLIP
// merges file through zlib's gz* interface, which reads plain and gzip files alike; Hugging Face vocab.json +
// merges.txt), text normalisation, the hand-written pre-tokeniser, byte-level BPE, decoding.
#include "diffusion/clip_tokenizer.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace cxr::diffusion {

// ------------------------------------------------------------------------------------------------------------------
// bytes_to_unicode
// ------------------------------------------------------------------------------------------------------------------

namespace {

bool is_printable_byte(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct ByteMaps {
    std::array<char32_t, 256> to_unicode{};
    std::array<uint8_t, 256> order{};  // byte of vocabulary id k
    std::array<int, 324> from_unicode{};  // code point (< 0x144) -> byte, -1 when not a byte symbol
    ByteMaps() {
        int k = 0;
        for (int b = 0; b < 256; ++b)  // the 188 printable bytes first, mapped to themselves
            if (is_printable_byte(b)) {
                to_unicode[b] = (char32_t)b;
                order[k++] = (uint8_t)b;
            }
        int n = 0;
        for (int b = 0; b < 256; ++b)  // the other 68, in increasing order, to U+0100, U+0101, ...
            if (!is_printable_byte(b)) {
                to_unicode[b] = (char32_t)(256 + n++);
                order[k++] = (uint8_t)b;
            }
        from_unicode.fill(-1);
        for (int b = 0; b < 256; ++b) from_unicode[to_unicode[b]] = b;
    }
};

const ByteMaps& byte_maps() {
    static const ByteMaps maps;
    return maps;
}

}  // namespace

const std::array<char32_t, 256>& clip_byte_to_unicode() { return byte_maps().to_unicode; }
const std::array<uint8_t, 256>& clip_byte_order() { return byte_maps().order; }

// ------------------------------------------------------------------------------------------------------------------
// UTF-8
// ------------------------------------------------------------------------------------------------------------------

std::u32string utf8_to_u32(const std::string& s) {
    // Well-formed sequences per Unicode Table 3-7; an ill-formed one is replaced by one U+FFFD per maximal subpart
    // (the longest prefix of a well-formed sequence), as Python's errors="replace" does.
    std::u32string out;
    out.reserve(s.size());
    const size_t n = s.size();
    size_t i = 0;
    auto byte = [&](size_t k) { return (unsigned char)s[k]; };
    while (i < n) {
        const unsigned char c = byte(i);
        if (c < 0x80) {
            out.push_back(c);
            ++i;
            continue;
        }
        int len = 0;
        char32_t cp = 0;
        unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;  // no surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;  // <= U+10FFFF
        } else {
            out.push_back(0xFFFD);  // a continuation byte or an impossible lead byte
            ++i;
            continue;
        }
        size_t k = 1;
        bool ok = true;
        for (; k < (size_t)len; ++k) {
            if (i + k >= n) {
                ok = false;
                break;
            }
            const unsigned char b = byte(i + k);
            const unsigned char blo = k == 1 ? lo : 0x80, bhi = k == 1 ? hi : 0xBF;
            if (b < blo || b > bhi) {
                ok = false;
                break;
            }
            cp = (cp << 6) | (b & 0x3F);
        }
        out.push_back(ok ? cp : (char32_t)0xFFFD);
        i += k;  // on failure: the lead byte and the valid continuation bytes form one maximal subpart
    }
    return out;
}

namespace {

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out.push_back((char)c);
    } else if (c < 0x800) {
        out.push_back((char)(0xC0 | (c >> 6)));
        out.push_back((char)(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back((char)(0xE0 | (c >> 12)));
        out.push_back((char)(0x80 | ((c >> 6) & 0x3F)));
        out.push_back((char)(0x80 | (c & 0x3F)));
    } else {
        out.push_back((char)(0xF0 | (c >> 18)));
        out.push_back((char)(0x80 | ((c >> 12) & 0x3F)));
        out.push_back((char)(0x80 | ((c >> 6) & 0x3F)));
        out.push_back((char)(0x80 | (c & 0x3F)));
    }
}

}  // namespace

std::string u32_to_utf8(const std::u32string& s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) append_utf8(out, c);
    return out;
}

// ------------------------------------------------------------------------------------------------------------------
// Character classes (exact for ASCII; the approximation of the header for other code points)
// ------------------------------------------------------------------------------------------------------------------

namespace {

struct Range {
    char32_t lo, hi;
};

template <size_t N>
bool in_ranges(const Range (&ranges)[N], char32_t c) {
    for (const Range& r : ranges)
        if (c >= r.lo && c <= r.hi) return true;
    return false;
}

// Python's str.isspace() set.
bool is_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// \p{N} outside ASCII: decimal-digit blocks, super/subscript digits, fractions, number forms, enclosed numbers.
const Range kNumberRanges[] = {
    {0xB2, 0xB3},     {0xB9, 0xB9},     {0xBC, 0xBE},     {0x660, 0x669},   {0x6F0, 0x6F9},   {0x7C0, 0x7C9},
    {0x966, 0x96F},   {0x9E6, 0x9EF},   {0x9F4, 0x9F9},   {0xA66, 0xA6F},   {0xAE6, 0xAEF},   {0xB66, 0xB6F},
    {0xB72, 0xB77},   {0xBE6, 0xBF2},   {0xC66, 0xC6F},   {0xC78, 0xC7E},   {0xCE6, 0xCEF},   {0xD58, 0xD5E},
    {0xD66, 0xD78},   {0xDE6, 0xDEF},   {0xE50, 0xE59},   {0xED0, 0xED9},   {0xF20, 0xF33},   {0x1040, 0x1049},
    {0x1090, 0x1099}, {0x1369, 0x137C}, {0x16EE, 0x16F0}, {0x17E0, 0x17E9}, {0x17F0, 0x17F9}, {0x1810, 0x1819},
    {0x1946, 0x194F}, {0x19D0, 0x19DA}, {0x1A80, 0x1A89}, {0x1A90, 0x1A99}, {0x1B50, 0x1B59}, {0x1BB0, 0x1BB9},
    {0x1C40, 0x1C49}, {0x1C50, 0x1C59}, {0x2070, 0x2070}, {0x2074, 0x2079}, {0x2080, 0x2089}, {0x2150, 0x2182},
    {0x2185, 0x2189}, {0x2460, 0x249B}, {0x24EA, 0x24FF}, {0x2776, 0x2793}, {0x2CFD, 0x2CFD}, {0x3007, 0x3007},
    {0x3021, 0x3029}, {0x3038, 0x303A}, {0x3192, 0x3195}, {0x3220, 0x3229}, {0x3248, 0x324F}, {0x3251, 0x325F},
    {0x3280, 0x3289}, {0x32B1, 0x32BF}, {0xA620, 0xA629}, {0xA6E6, 0xA6EF}, {0xA830, 0xA835}, {0xA8D0, 0xA8D9},
    {0xA900, 0xA909}, {0xA9D0, 0xA9D9}, {0xA9F0, 0xA9F9}, {0xAA50, 0xAA59}, {0xABF0, 0xABF9}, {0xFF10, 0xFF19},
    {0x1D7CE, 0x1D7FF}, {0x1F100, 0x1F10C},
};

// Neither letter, number nor space outside ASCII: punctuation, symbols, marks, controls, private use (see header).
const Range kOtherRanges[] = {
    {0x80, 0x9F},       {0xA1, 0xA9},       {0xAB, 0xB1},       {0xB4, 0xB4},       {0xB6, 0xB8},
    {0xBB, 0xBB},       {0xBF, 0xBF},       {0xD7, 0xD7},       {0xF7, 0xF7},       {0x2C2, 0x2C5},
    {0x2D2, 0x2DF},     {0x2E5, 0x2EB},     {0x2ED, 0x2ED},     {0x2EF, 0x2FF},     {0x300, 0x36F},
    {0x375, 0x375},     {0x37E, 0x37E},     {0x384, 0x385},     {0x387, 0x387},     {0x3F6, 0x3F6},
    {0x482, 0x489},     {0x55A, 0x55F},     {0x589, 0x58A},     {0x58D, 0x58F},     {0x591, 0x5C7},
    {0x5F3, 0x5F4},     {0x600, 0x61F},     {0x64B, 0x65F},     {0x66A, 0x66D},     {0x670, 0x670},
    {0x6D4, 0x6D4},     {0x6D6, 0x6E4},     {0x6E7, 0x6ED},     {0x1AB0, 0x1AFF},   {0x1DC0, 0x1DFF},
    {0x2000, 0x206F},   {0x207A, 0x207E},   {0x208A, 0x208E},   {0x20A0, 0x20FF},   {0x2100, 0x2101},
    {0x2103, 0x2106},   {0x2108, 0x2109},   {0x2114, 0x2114},   {0x2116, 0x2118},   {0x211E, 0x2123},
    {0x2125, 0x2125},   {0x2127, 0x2127},   {0x2129, 0x2129},   {0x212E, 0x212E},   {0x213A, 0x213B},
    {0x2140, 0x2144},   {0x214A, 0x214D},   {0x214F, 0x214F},   {0x218A, 0x218B},   {0x2190, 0x245F},
    {0x249C, 0x24E9},   {0x2500, 0x2775},   {0x2794, 0x2BFF},   {0x2CE5, 0x2CEA},   {0x2CEF, 0x2CF1},
    {0x2CF9, 0x2CFC},   {0x2CFE, 0x2CFF},   {0x2DE0, 0x2DFF},   {0x2E00, 0x2E2E},   {0x2E30, 0x2E7F},
    {0x2E80, 0x2FFF},   {0x3001, 0x3004},   {0x3008, 0x3020},   {0x302A, 0x3030},   {0x3036, 0x3037},
    {0x303D, 0x303F},   {0x3099, 0x309C},   {0x30A0, 0x30A0},   {0x30FB, 0x30FB},   {0xD800, 0xF8FF},
    {0xFD3E, 0xFD3F},   {0xFE00, 0xFE2F},   {0xFE30, 0xFE4F},   {0xFE50, 0xFE6B},   {0xFEFF, 0xFEFF},
    {0xFF01, 0xFF0F},   {0xFF1A, 0xFF20},   {0xFF3B, 0xFF40},   {0xFF5B, 0xFF65},   {0xFFE0, 0xFFEE},
    {0xFFF9, 0xFFFF},   {0x1D100, 0x1D1FF}, {0x1F000, 0x1F0FF}, {0x1F10D, 0x1FAFF}, {0xE0000, 0xE0FFF},
    {0xF0000, 0x10FFFF},
};

}  // namespace

ClipCharClass clip_char_class(char32_t c) {
    if (c < 0x80) {
        if (is_space(c)) return ClipCharClass::space;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return ClipCharClass::letter;
        if (c >= '0' && c <= '9') return ClipCharClass::number;
        return ClipCharClass::other;  // punctuation, symbols and the remaining control characters
    }
    if (is_space(c)) return ClipCharClass::space;
    if (in_ranges(kNumberRanges, c)) return ClipCharClass::number;
    if (in_ranges(kOtherRanges, c)) return ClipCharClass::other;
    return ClipCharClass::letter;
}

// ------------------------------------------------------------------------------------------------------------------
// Normalisation
// ------------------------------------------------------------------------------------------------------------------

namespace {

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hex_value(char32_t c) { return is_ascii_digit(c) ? (int)(c - '0') : (int)((c | 0x20) - 'a' + 10); }

// Python's html.unescape for a numeric reference of value `num` (already saturated above 0x10FFFF).
std::u32string numeric_charref(uint32_t num) {
    // Code points 0x80..0x9F are read as Windows-1252 (HTML5 "invalid character references"); 0 and 0x0D too.
    static const char32_t cp1252[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                        0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
    if (num == 0x00) return U"\uFFFD";
    if (num == 0x0D) return U"\r";
    if (num >= 0x80 && num <= 0x9F) return std::u32string(1, cp1252[num - 0x80]);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return U"\uFFFD";
    // Invalid code points are removed: C0 controls except \t \n \f \r, DEL..0x9F, noncharacters.
    const bool invalid = (num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
                         (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) ||
                         (num & 0xFFFE) == 0xFFFE;
    if (invalid) return U"";
    return std::u32string(1, (char32_t)num);
}

// The named-entity subset (name as matched, with or without ';').
bool named_entity(const std::u32string& name, std::u32string& out) {
    static const std::pair<const char*, char32_t> table[] = {
        {"amp;", '&'},  {"amp", '&'},   {"AMP;", '&'},   {"AMP", '&'},   {"lt;", '<'},      {"lt", '<'},
        {"LT;", '<'},   {"LT", '<'},    {"gt;", '>'},    {"gt", '>'},    {"GT;", '>'},      {"GT", '>'},
        {"quot;", '"'}, {"quot", '"'},  {"QUOT;", '"'},  {"QUOT", '"'},  {"apos;", '\''},   {"nbsp;", 0xA0},
        {"nbsp", 0xA0},
    };
    for (const auto& [key, value] : table) {
        const size_t len = std::strlen(key);
        if (name.size() != len) continue;
        bool same = true;
        for (size_t k = 0; k < len && same; ++k) same = name[k] == (char32_t)(unsigned char)key[k];
        if (same) {
            out = std::u32string(1, value);
            return true;
        }
    }
    return false;
}

// One pass of html.unescape: the pattern &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?), left to right,
// replacements not rescanned.
std::u32string html_unescape_u32(const std::u32string& s) {
    if (s.find(U'&') == std::u32string::npos) return s;
    std::u32string out;
    out.reserve(s.size());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        if (s[i] != U'&') {
            out.push_back(s[i++]);
            continue;
        }
        if (i + 1 < n && s[i + 1] == U'#') {  // numeric: &#123; or &#x7B; (';' optional)
            size_t j = i + 2;
            const bool hex = j + 1 < n && (s[j] == U'x' || s[j] == U'X') && is_ascii_hex(s[j + 1]);
            if (hex) ++j;
            const size_t start = j;
            uint32_t num = 0;
            while (j < n && (hex ? is_ascii_hex(s[j]) : is_ascii_digit(s[j]))) {
                const uint32_t d = hex ? (uint32_t)hex_value(s[j]) : (uint32_t)(s[j] - U'0');
                num = std::min<uint32_t>(0x110000, num * (hex ? 16 : 10) + d);  // saturate: > 0x10FFFF is invalid
                ++j;
            }
            if (j == start) {  // "&#" without digits is no reference
                out.push_back(s[i++]);
                continue;
            }
            if (j < n && s[j] == U';') ++j;
            out += numeric_charref(num);
            i = j;
            continue;
        }
        size_t j = i + 1;  // named: up to 32 characters other than \t \n \f space < & # ;
        static const std::u32string stop = U"\t\n\f <&#;";
        while (j < n && j - (i + 1) < 32 && stop.find(s[j]) == std::u32string::npos) ++j;
        if (j == i + 1) {
            out.push_back(s[i++]);
            continue;
        }
        if (j < n && s[j] == U';') ++j;
        const std::u32string name = s.substr(i + 1, j - (i + 1));
        std::u32string rep;
        if (named_entity(name, rep)) {
            out += rep;
        } else {
            bool found = false;  // the longest prefix (at least 2 characters) that is an entity name
            for (size_t x = name.size() - 1; x >= 2 && !found; --x)
                if (named_entity(name.substr(0, x), rep)) {
                    out += rep;
                    out += name.substr(x);
                    found = true;
                }
            if (!found) {
                out.push_back(U'&');
                out += name;
            }
        }
        i = j;
    }
    return out;
}

// The ftfy subset: quotes, ligatures, fullwidth ASCII, control characters.
std::u32string ftfy_subset(const std::u32string& s) {
    std::u32string out;
    out.reserve(s.size());
    for (char32_t c : s) {
        if ((c >= 0x2018 && c <= 0x201B) || c == 0x02BC) {
            out.push_back(U'\'');
        } else if (c >= 0x201C && c <= 0x201F) {
            out.push_back(U'"');
        } else if (c == 0xFB00) {
            out += U"ff";
        } else if (c == 0xFB01) {
            out += U"fi";
        } else if (c == 0xFB02) {
            out += U"fl";
        } else if (c == 0xFB03) {
            out += U"ffi";
        } else if (c == 0xFB04) {
            out += U"ffl";
        } else if (c == 0xFB06) {
            out += U"st";
        } else if (c >= 0xFF01 && c <= 0xFF5E) {
            out.push_back(c - 0xFF01 + 0x21);
        } else if (c == 0x3000) {
            out.push_back(U' ');
        } else if (c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || c == 0xFEFF) {
            // removed
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// Whitespace runs -> one space, leading/trailing whitespace removed.
std::u32string clean_whitespace(const std::u32string& s) {
    std::u32string out;
    out.reserve(s.size());
    bool pending = false;
    for (char32_t c : s) {
        if (is_space(c)) {
            pending = !out.empty();
        } else {
            if (pending) out.push_back(U' ');
            pending = false;
            out.push_back(c);
        }
    }
    return out;
}

// Lower case: exact for ASCII; Latin-1, Latin Extended-A, Latin Extended Additional, Greek, Cyrillic, Armenian and
// fullwidth capitals by their simple mappings; U+0130 becomes "i" + U+0307 as in Python. Not covered (left as they
// are): Latin Extended-B, archaic Greek letters, Georgian, Cherokee, Glagolitic, Coptic, Deseret and other scripts.
void append_lower(std::u32string& out, char32_t c) {
    auto even_to_odd = [&](char32_t lo, char32_t hi) { return c >= lo && c <= hi && ((c - lo) % 2 == 0); };
    if (c >= 'A' && c <= 'Z') {
        out.push_back(c + 32);
    } else if (c < 0x80) {
        out.push_back(c);
    } else if (c >= 0xC0 && c <= 0xDE && c != 0xD7) {
        out.push_back(c + 32);
    } else if (c == 0x130) {
        out.push_back(U'i');
        out.push_back(0x307);
    } else if (even_to_odd(0x100, 0x12F) || even_to_odd(0x132, 0x137) || even_to_odd(0x139, 0x148) ||
               even_to_odd(0x14A, 0x177) || even_to_odd(0x179, 0x17E) || even_to_odd(0x1E00, 0x1E95) ||
               even_to_odd(0x1EA0, 0x1EFF)) {
        out.push_back(c + 1);
    } else if (even_to_odd(0x460, 0x481) || even_to_odd(0x48A, 0x4BF) || even_to_odd(0x4D0, 0x52F) ||
               even_to_odd(0x3D8, 0x3EF)) {
        out.push_back(c + 1);
    } else if (c >= 0x4C1 && c <= 0x4CE && (c - 0x4C1) % 2 == 0) {
        out.push_back(c + 1);
    } else if (c == 0x4C0) {
        out.push_back(0x4CF);
    } else if (c == 0x178) {
        out.push_back(0xFF);
    } else if (c == 0x1E9E) {
        out.push_back(0xDF);
    } else if (c == 0x386) {
        out.push_back(0x3AC);
    } else if (c >= 0x388 && c <= 0x38A) {
        out.push_back(c + 37);
    } else if (c == 0x38C) {
        out.push_back(0x3CC);
    } else if (c == 0x38E || c == 0x38F) {
        out.push_back(c + 63);
    } else if (c >= 0x531 && c <= 0x556) {
        out.push_back(c + 48);
    } else if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) {
        out.push_back(c + 32);
    } else if (c >= 0x400 && c <= 0x40F) {
        out.push_back(c + 80);
    } else if ((c >= 0x410 && c <= 0x42F) || (c >= 0xFF21 && c <= 0xFF3A)) {
        out.push_back(c + 32);
    } else {
        out.push_back(c);
    }
}

std::u32string normalize_u32(const std::string& text) {
    std::u32string s = ftfy_subset(utf8_to_u32(text));
    s = html_unescape_u32(html_unescape_u32(s));
    s = clean_whitespace(s);
    std::u32string out;
    out.reserve(s.size());
    // Python's final-sigma rule: a capital sigma preceded by a cased letter and not followed by one (both looks
    // skipping case-ignorable characters) becomes the final sigma U+03C2. Approximated: "cased" = the letters of
    // the Latin, Greek, Cyrillic and Armenian blocks; "case-ignorable" = ' . : ^ ` and their Latin-1 / general
    // punctuation relatives, modifier letters and combining marks.
    auto cased = [](char32_t c) {
        return clip_char_class(c) == ClipCharClass::letter && (c < 0x590 || (c >= 0x1E00 && c <= 0x1FFF));
    };
    auto ignorable = [](char32_t c) {
        return c == '\'' || c == '.' || c == ':' || c == '^' || c == '`' || c == 0xA8 || c == 0xAD || c == 0xAF ||
               c == 0xB4 || c == 0xB7 || c == 0xB8 || (c >= 0x2B0 && c <= 0x36F) || c == 0x2018 || c == 0x2019 ||
               c == 0x2024 || c == 0x2027;
    };
    for (size_t k = 0; k < s.size(); ++k) {
        if (s[k] != 0x3A3) {
            append_lower(out, s[k]);
            continue;
        }
        size_t b = k;
        while (b > 0 && ignorable(s[b - 1])) --b;
        size_t f = k + 1;
        while (f < s.size() && ignorable(s[f])) ++f;
        const bool final = b > 0 && cased(s[b - 1]) && !(f < s.size() && cased(s[f]));
        out.push_back(final ? 0x3C2 : 0x3C3);
    }
    return out;
}

// ------------------------------------------------------------------------------------------------------------------
// Pre-tokeniser
// ------------------------------------------------------------------------------------------------------------------

char32_t ascii_lower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// Whether `word` (ASCII) occurs at position i of s, ASCII case-insensitive.
bool matches_at(const std::u32string& s, size_t i, const char* word) {
    const size_t len = std::strlen(word);
    if (i + len > s.size()) return false;
    for (size_t k = 0; k < len; ++k)
        if (ascii_lower(s[i + k]) != (char32_t)(unsigned char)word[k]) return false;
    return true;
}

// The reference pattern's alternatives in order at each position; characters matching none (whitespace) skipped.
std::vector<std::u32string> pretokenize_u32(const std::u32string& s) {
    std::vector<std::u32string> pieces;
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        size_t len = 0;
        if (matches_at(s, i, kClipStartToken)) {
            len = std::strlen(kClipStartToken);
        } else if (matches_at(s, i, kClipEndToken)) {
            len = std::strlen(kClipEndToken);
        } else if (s[i] == U'\'' && i + 1 < n &&
                   (ascii_lower(s[i + 1]) == U's' || ascii_lower(s[i + 1]) == U't' ||
                    ascii_lower(s[i + 1]) == U'm' || ascii_lower(s[i + 1]) == U'd')) {
            len = 2;  // 's 't 'm 'd
        } else if (matches_at(s, i, "'re") || matches_at(s, i, "'ve") || matches_at(s, i, "'ll")) {
            len = 3;
        } else {
            const ClipCharClass cls = clip_char_class(s[i]);
            if (cls == ClipCharClass::space) {
                ++i;
                continue;
            }
            if (cls == ClipCharClass::number) {
                len = 1;  // [\p{N}]: one number character per piece
            } else {      // [\p{L}]+ or [^\s\p{L}\p{N}]+: a run of the same class
                len = 1;
                while (i + len < n && clip_char_class(s[i + len]) == cls) ++len;
            }
        }
        pieces.push_back(s.substr(i, len));
        i += len;
    }
    return pieces;
}

}  // namespace

std::string html_unescape(const std::string& text) { return u32_to_utf8(html_unescape_u32(utf8_to_u32(text))); }

std::string clip_normalize(const std::string& text) { return u32_to_utf8(normalize_u32(text)); }

std::vector<std::string> clip_pretokenize(const std::string& text) {
    std::vector<std::string> out;
    for (const auto& p : pretokenize_u32(utf8_to_u32(text))) out.push_back(u32_to_utf8(p));
    return out;
}

// ------------------------------------------------------------------------------------------------------------------
// The tokenizer's tables and word cache
// ------------------------------------------------------------------------------------------------------------------

struct ClipTokenizer::Tables {
    std::vector<std::string> vocab_by_id;         // id -> token string (UTF-8 of byte symbols)
    std::unordered_map<std::string, int> ids;     // token string -> id
    std::array<int, 256> byte_id{}, byte_end_id{};  // id of a byte's symbol, and of the symbol + "</w>"
    struct Merge {
        int rank;
        int id;  // id of the joined symbol
    };
    std::unordered_map<uint64_t, Merge> merges;   // (left id, right id) -> rank and result
    int num_merges = 0, start_id = -1, end_id = -1, pad_id = -1;
    std::vector<std::string> bytes_of;            // id -> the bytes its symbols stand for
    std::vector<char> decodable;                  // id -> whether every character is a byte symbol
    std::string source;                           // file(s) it was loaded from, for messages

    static uint64_t key(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
};

struct ClipTokenizer::WordCache {
    static constexpr size_t kMaxWords = 65536;  // cleared when full (bounded memory for long-running jobs)
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int>> words;
};

namespace {

// The token strings of the 256 byte symbols in id order, and the same with "</w>".
std::vector<std::string> byte_symbol_strings() {
    std::vector<std::string> v;
    for (int k = 0; k < 256; ++k) {
        std::string s;
        append_utf8(s, clip_byte_to_unicode()[clip_byte_order()[k]]);
        v.push_back(s);
    }
    for (int k = 0; k < 256; ++k) v.push_back(v[k] + "</w>");
    return v;
}

// The whole content of a plain or gzip file.
std::string read_file(const std::string& path, const std::string& what) {
    if (!std::filesystem::exists(path)) CXR_FAIL(what, " not found: ", path);
    gzFile gz = gzopen(path.c_str(), "rb");
    if (!gz) CXR_FAIL(path, ": cannot open ", what, " for reading (", std::strerror(errno), ")");
    std::string out;
    std::vector<char> buf(1 << 16);
    while (true) {
        const int n = gzread(gz, buf.data(), (unsigned)buf.size());
        if (n < 0) {
            int errnum = Z_OK;
            const char* msg = gzerror(gz, &errnum);
            const std::string m = msg && *msg ? msg : "I/O error";
            gzclose(gz);
            CXR_FAIL(path, ": cannot read ", what, " (", m, "); the file is corrupt or truncated");
        }
        if (n == 0) break;
        out.append(buf.data(), (size_t)n);
    }
    int errnum = Z_OK;
    const char* msg = gzerror(gz, &errnum);
    const std::string m = msg && *msg ? msg : "";
    gzclose(gz);
    if (errnum != Z_OK && errnum != Z_STREAM_END) CXR_FAIL(path, ": cannot read ", what, " (", m, ")");
    return out;
}

struct MergeList {
    std::vector<std::pair<std::string, std::string>> merges;
    std::vector<int> lines;  // 1-based file line of each merge
};

// Merges "a b" from lines 2.. of a file (line 1 is the version header, checked to contain "#version").
MergeList parse_merges(const std::string& text, const std::string& path, int max_merges, bool need_all) {
    if (text.empty()) CXR_FAIL(path, ": the merges file is empty");
    MergeList out;
    size_t pos = 0;
    int line_no = 0;
    std::unordered_map<std::string, int> seen;  // "a b" -> line
    while (pos <= text.size() && (int)out.merges.size() < max_merges) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        const bool last = end == text.size();
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line_no == 1) {
            if (line.find("#version") == std::string::npos)
                CXR_FAIL(path, ":1: the first line must be the version header (\"#version: ...\"), got \"",
                         line.substr(0, 80), "\"; is this a BPE merges file?");
            if (last) break;
            continue;
        }
        if (line.empty() && last) break;  // the final newline
        const size_t sp = line.find(' ');
        if (line.empty() || sp == 0 || sp == std::string::npos || sp + 1 == line.size() ||
            line.find(' ', sp + 1) != std::string::npos || line.find('\t') != std::string::npos)
            CXR_FAIL(path, ":", line_no, ": expected a merge as two symbols separated by one space, got \"",
                     line.substr(0, 80), "\"");
        auto [it, fresh] = seen.emplace(line, line_no);
        if (!fresh) CXR_FAIL(path, ":", line_no, ": duplicate merge \"", line, "\" (first at line ", it->second, ")");
        out.merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
        out.lines.push_back(line_no);
        if (last) break;
    }
    if (need_all && (int)out.merges.size() < max_merges)
        CXR_FAIL(path, ": holds only ", out.merges.size(), " merges after its header, expected ", max_merges,
                 " (file lines 2..", max_merges + 1, "); the file is truncated or not the CLIP merges file");
    return out;
}

}  // namespace

ClipTokenizer ClipTokenizer::build(std::vector<std::string> vocab_by_id, std::unordered_map<std::string, int> ids,
                                   const std::vector<std::pair<std::string, std::string>>& merges,
                                   const std::vector<int>& merge_lines, const std::string& source) {
    auto t = std::make_shared<Tables>();
    t->source = source;
    t->vocab_by_id = std::move(vocab_by_id);
    t->ids = std::move(ids);
    const int n = (int)t->vocab_by_id.size();
    auto id_of = [&](const std::string& s) {
        auto it = t->ids.find(s);
        return it == t->ids.end() ? -1 : it->second;
    };
    // Byte symbols.
    const std::vector<std::string> base = byte_symbol_strings();
    for (int k = 0; k < 256; ++k) {
        const int b = clip_byte_order()[k];
        t->byte_id[b] = id_of(base[k]);
        t->byte_end_id[b] = id_of(base[256 + k]);
        if (t->byte_id[b] < 0 || t->byte_end_id[b] < 0)
            CXR_FAIL(source, ": the vocabulary lacks the byte symbol \"", t->byte_id[b] < 0 ? base[k] : base[256 + k],
                     "\" (byte ", b, "); every byte and byte+</w> must have an id");
    }
    // Merges.
    t->num_merges = (int)merges.size();
    t->merges.reserve(merges.size() * 2);
    for (size_t r = 0; r < merges.size(); ++r) {
        const auto& [a, b] = merges[r];
        const int ia = id_of(a), ib = id_of(b), ij = id_of(a + b);
        const std::string where = source + ":" + std::to_string(merge_lines[r]) + ": merge \"" + a + " " + b + "\"";
        if (ia < 0) CXR_FAIL(where, ": its left symbol \"", a, "\" is not in the vocabulary");
        if (ib < 0) CXR_FAIL(where, ": its right symbol \"", b, "\" is not in the vocabulary");
        if (ij < 0) CXR_FAIL(where, ": the vocabulary lacks its result \"", a + b, "\"");
        t->merges[Tables::key(ia, ib)] = {(int)r, ij};
    }
    // Special tokens.
    t->start_id = id_of(kClipStartToken);
    t->end_id = id_of(kClipEndToken);
    if (t->start_id < 0 || t->end_id < 0)
        CXR_FAIL(source, ": the vocabulary lacks ", t->start_id < 0 ? kClipStartToken : kClipEndToken);
    t->pad_id = t->end_id;
    // Decoding table: each id's characters back to bytes.
    t->bytes_of.resize(n);
    t->decodable.assign(n, 1);
    const auto& from = byte_maps().from_unicode;
    for (int id = 0; id < n; ++id) {
        for (char32_t c : utf8_to_u32(t->vocab_by_id[id])) {
            if (c < from.size() && from[c] >= 0) {
                t->bytes_of[id].push_back((char)from[c]);
            } else {
                t->decodable[id] = 0;
                break;
            }
        }
    }
    ClipTokenizer tok;
    tok.tables_ = t;
    tok.cache_ = std::make_shared<WordCache>();
    return tok;
}

ClipTokenizer ClipTokenizer::from_clip_merges(const std::string& path, int num_merges) {
    CXR_CHECK(num_merges >= 0, "from_clip_merges: num_merges must be >= 0, got ", num_merges);
    const MergeList m = parse_merges(read_file(path, "CLIP merges file"), path, num_merges, true);
    // Vocabulary: bytes, bytes + </w>, one per merge, then the two special tokens.
    std::vector<std::string> vocab = byte_symbol_strings();
    for (const auto& [a, b] : m.merges) vocab.push_back(a + b);
    vocab.push_back(kClipStartToken);
    vocab.push_back(kClipEndToken);
    std::unordered_map<std::string, int> ids;
    ids.reserve(vocab.size() * 2);
    for (int i = 0; i < (int)vocab.size(); ++i) ids[vocab[i]] = i;  // a repeated string keeps its last id (as dict())
    return build(std::move(vocab), std::move(ids), m.merges, m.lines, path);
}

namespace {

// A vocabulary object {"token": id, ...} with ids exactly 0..N-1 -> tokens by id and ids by token.
void parse_vocab_object(const nlohmann::json& j, const std::string& source, std::vector<std::string>& by_id,
                        std::unordered_map<std::string, int>& ids) {
    if (!j.is_object() || j.empty()) CXR_FAIL(source, ": expected a JSON object mapping token strings to ids");
    const int n = (int)j.size();
    by_id.assign(n, std::string());
    std::vector<char> used(n, 0);
    ids.clear();
    ids.reserve(n * 2);
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (!it.value().is_number_integer())
            CXR_FAIL(source, ": the id of token \"", it.key(), "\" is not an integer");
        const long long id = it.value().get<long long>();
        if (id < 0 || id >= n)
            CXR_FAIL(source, ": token \"", it.key(), "\" has id ", id, ", outside 0..", n - 1,
                     " (the ids must be 0..N-1 for N tokens)");
        if (used[id]) CXR_FAIL(source, ": id ", id, " is given to both \"", by_id[id], "\" and \"", it.key(), "\"");
        used[id] = 1;
        by_id[id] = it.key();
        ids[it.key()] = (int)id;
    }
}

}  // namespace

ClipTokenizer ClipTokenizer::from_hf_files(const std::string& vocab_json, const std::string& merges_txt) {
    const std::string vtext = read_file(vocab_json, "vocab.json");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(vtext);
    } catch (const std::exception& e) {
        CXR_FAIL(vocab_json, ": not valid JSON (", e.what(), ")");
    }
    std::vector<std::string> by_id;
    std::unordered_map<std::string, int> ids;
    parse_vocab_object(j, vocab_json, by_id, ids);
    // transformers' CLIPTokenizer reads at most 49152 - 256 - 2 merges after the header.
    const MergeList m = parse_merges(read_file(merges_txt, "merges.txt"), merges_txt, kClipNumMerges, false);
    return build(std::move(by_id), std::move(ids), m.merges, m.lines, vocab_json + " + " + merges_txt);
}

ClipTokenizer ClipTokenizer::from_hf_tokenizer_json(const std::string& path) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_file(path, "tokenizer.json"));
    } catch (const cxr::Error&) {
        throw;
    } catch (const std::exception& e) {
        CXR_FAIL(path, ": not valid JSON (", e.what(), ")");
    }
    if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
        CXR_FAIL(path, ": no \"model\" object (is this a tokenizers tokenizer.json?)");
    const nlohmann::json& model = j["model"];
    if (!model.contains("type") || model["type"] != "BPE")
        CXR_FAIL(path, ": model.type must be \"BPE\" for a CLIP tokenizer");
    if (!model.contains("vocab") || !model.contains("merges") || !model["merges"].is_array())
        CXR_FAIL(path, ": model needs \"vocab\" and a \"merges\" array");
    std::vector<std::string> by_id;
    std::unordered_map<std::string, int> ids;
    parse_vocab_object(model["vocab"], path + " (model.vocab)", by_id, ids);
    // The merges as the text of a merges file: each entry is "a b" (older files) or ["a", "b"] (newer ones).
    std::string text = "#version: tokenizer.json\n";
    size_t k = 0;
    for (const auto& m : model["merges"]) {
        if (m.is_string()) {
            text += m.get<std::string>();
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            text += m[0].get<std::string>() + " " + m[1].get<std::string>();
        } else {
            CXR_FAIL(path, ": model.merges[", k, "] is neither \"a b\" nor [\"a\", \"b\"]");
        }
        text += "\n";
        ++k;
    }
    const MergeList m = parse_merges(text, path + " (model.merges, line = index + 2)", kClipNumMerges, false);
    return build(std::move(by_id), std::move(ids), m.merges, m.lines, path);
}

ClipTokenizer ClipTokenizer::from_hf_folder(const std::string& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) CXR_FAIL("tokenizer folder not found: ", dir);
    fs::path folder = dir;
    auto has_files = [](const fs::path& f) { return fs::exists(f / "vocab.json") || fs::exists(f / "tokenizer.json"); };
    if (!has_files(folder) && has_files(folder / "tokenizer")) folder = folder / "tokenizer";  // a pipeline folder
    if (!has_files(folder))
        CXR_FAIL(dir, ": no vocab.json or tokenizer.json here or under tokenizer/ (expected a diffusers/transformers ",
                 "CLIP tokenizer)");
    ClipTokenizer tok = [&] {
        if (!fs::exists(folder / "vocab.json")) return from_hf_tokenizer_json((folder / "tokenizer.json").string());
        if (!fs::exists(folder / "merges.txt"))
            CXR_FAIL(folder.string(), ": vocab.json is there but merges.txt is missing");
        return from_hf_files((folder / "vocab.json").string(), (folder / "merges.txt").string());
    }();
    // pad_token from special_tokens_map.json, else tokenizer_config.json: a string or {"content": ...}.
    for (const char* name : {"special_tokens_map.json", "tokenizer_config.json"}) {
        const fs::path p = folder / name;
        if (!fs::exists(p)) continue;
        nlohmann::json cfg;
        try {
            cfg = nlohmann::json::parse(read_file(p.string(), name));
        } catch (const cxr::Error&) {
            throw;
        } catch (const std::exception& e) {
            CXR_FAIL(p.string(), ": not valid JSON (", e.what(), ")");
        }
        if (!cfg.is_object() || !cfg.contains("pad_token") || cfg["pad_token"].is_null()) continue;
        const nlohmann::json& pt = cfg["pad_token"];
        std::string pad;
        if (pt.is_string())
            pad = pt.get<std::string>();
        else if (pt.is_object() && pt.contains("content") && pt["content"].is_string())
            pad = pt["content"].get<std::string>();
        else
            CXR_FAIL(p.string(), ": pad_token must be a string or an object with \"content\"");
        const int id = tok.token_id(pad);
        if (id < 0) CXR_FAIL(p.string(), ": pad_token \"", pad, "\" is not in vocab.json");
        auto t = std::make_shared<Tables>(*tok.tables_);
        t->pad_id = id;
        tok.tables_ = t;
        break;
    }
    return tok;
}

// ------------------------------------------------------------------------------------------------------------------
// BPE and the public operations
// ------------------------------------------------------------------------------------------------------------------

std::vector<int> ClipTokenizer::bpe_ids(const std::string& piece) const {
    const Tables& t = *tables_;
    if (piece.empty()) return {};
    if (piece == kClipStartToken) return {t.start_id};
    if (piece == kClipEndToken) return {t.end_id};
    {
        std::lock_guard<std::mutex> lock(cache_->mutex);
        auto it = cache_->words.find(piece);
        if (it != cache_->words.end()) return it->second;
    }
    // One symbol per byte, the last one with "</w>".
    std::vector<int> word(piece.size());
    for (size_t k = 0; k < piece.size(); ++k) {
        const unsigned char b = (unsigned char)piece[k];
        word[k] = k + 1 == piece.size() ? t.byte_end_id[b] : t.byte_id[b];
    }
    std::vector<int> next;
    next.reserve(word.size());
    while (word.size() > 1) {
        // The adjacent pair of lowest rank.
        int best_rank = INT_MAX, first = -1, second = -1, joined = -1;
        for (size_t k = 0; k + 1 < word.size(); ++k) {
            auto it = t.merges.find(Tables::key(word[k], word[k + 1]));
            if (it != t.merges.end() && it->second.rank < best_rank) {
                best_rank = it->second.rank;
                first = word[k];
                second = word[k + 1];
                joined = it->second.id;
            }
        }
        if (best_rank == INT_MAX) break;
        // Merge every non-overlapping occurrence, left to right.
        next.clear();
        for (size_t k = 0; k < word.size();) {
            if (k + 1 < word.size() && word[k] == first && word[k + 1] == second) {
                next.push_back(joined);
                k += 2;
            } else {
                next.push_back(word[k]);
                k += 1;
            }
        }
        word.swap(next);
    }
    {
        std::lock_guard<std::mutex> lock(cache_->mutex);
        if (cache_->words.size() >= WordCache::kMaxWords) cache_->words.clear();
        cache_->words.emplace(piece, word);
    }
    return word;
}

std::vector<int> ClipTokenizer::encode(const std::string& text) const {
    std::vector<int> ids;
    for (const auto& piece : pretokenize_u32(normalize_u32(text))) {
        const std::vector<int> w = bpe_ids(u32_to_utf8(piece));
        ids.insert(ids.end(), w.begin(), w.end());
    }
    return ids;
}

std::vector<int> ClipTokenizer::encode_for_model(const std::string& text, int context, int pad_id) const {
    CXR_CHECK(context >= 2, "encode_for_model: the context must hold at least the start and end tokens, got ",
              context);
    const int pad = pad_id < 0 ? tables_->pad_id : pad_id;
    CXR_CHECK(pad < vocab_size(), "encode_for_model: pad id ", pad, " is outside the vocabulary (", vocab_size(),
              " tokens)");
    std::vector<int> out;
    out.reserve(context);
    out.push_back(start_id());
    const std::vector<int> ids = encode(text);
    out.insert(out.end(), ids.begin(), ids.end());
    out.push_back(end_id());
    if ((int)out.size() > context) {  // truncate=True: cut to the context, the end token replaces the last one
        out.resize(context);
        out.back() = end_id();
    }
    out.resize(context, pad);
    return out;
}

std::string ClipTokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
    const Tables& t = *tables_;
    std::string bytes;
    for (int id : ids) {
        CXR_CHECK(id >= 0 && id < vocab_size(), "decode: token id ", id, " is outside the vocabulary (",
                  vocab_size(), " tokens)");
        if (skip_special && (id == t.start_id || id == t.end_id)) continue;
        CXR_CHECK(t.decodable[id], "decode: token ", id, " (\"", t.vocab_by_id[id],
                  "\") has characters that are not byte symbols");
        bytes += t.bytes_of[id];
    }
    std::string text = u32_to_utf8(utf8_to_u32(bytes));  // invalid UTF-8 -> U+FFFD
    std::string out;
    out.reserve(text.size());
    for (size_t k = 0; k < text.size();) {
        if (text.compare(k, 4, "</w>") == 0) {
            out.push_back(' ');
            k += 4;
        } else {
            out.push_back(text[k++]);
        }
    }
    return out;
}

int ClipTokenizer::count_tokens(const std::string& text) const { return (int)encode(text).size(); }

std::function<int(const std::string&)> ClipTokenizer::token_counter() const {
    const ClipTokenizer self = *this;
    return [self](const std::string& text) { return self.count_tokens(text); };
}

std::vector<std::string> ClipTokenizer::bpe_symbols(const std::string& piece) const {
    std::vector<std::string> out;
    for (int id : bpe_ids(piece)) out.push_back(tables_->vocab_by_id[id]);
    return out;
}

int ClipTokenizer::vocab_size() const { return (int)tables_->vocab_by_id.size(); }
int ClipTokenizer::start_id() const { return tables_->start_id; }
int ClipTokenizer::end_id() const { return tables_->end_id; }
int ClipTokenizer::pad_id() const { return tables_->pad_id; }
int ClipTokenizer::num_merges() const { return tables_->num_merges; }

int ClipTokenizer::token_id(const std::string& token) const {
    auto it = tables_->ids.find(token);
    return it == tables_->ids.end() ? -1 : it->second;
}

const std::string& ClipTokenizer::token(int id) const {
    CXR_CHECK(id >= 0 && id < vocab_size(), "token: id ", id, " is outside the vocabulary (", vocab_size(),
              " tokens)");
    return tables_->vocab_by_id[id];
}

}  // namespace cxr::diffusion
