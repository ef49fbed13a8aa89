// The CLIP byte-pair-encoding tokenizer used by Stable Diffusion's text encoder (Radford et al., "Learning
// Transferable Visual Models From Natural Language Supervision", 2021; the reference is OpenAI CLIP's
// simple_tokenizer, which transformers' CLIPTokenizer reproduces). BPE itself follows Sennrich et al., "Neural
// Machine Translation of Rare Words with Subword Units", ACL 2016, on bytes as in GPT-2 (Radford et al., 2019).
//
// PIPELINE of encode(text):
//   1. normalise (clip_normalize):
//        a. a subset of ftfy.fix_text's default fixes: curly quotes -> straight (U+2018..U+201B and U+02BC -> ',
//           U+201C..U+201F -> "), Latin ligatures U+FB00..U+FB06 -> letters (ﬁ -> fi), fullwidth ASCII
//           U+FF01..U+FF5E -> U+0021..U+007E and U+3000 -> space, control characters removed (U+0000..U+0008,
//           U+000B, U+000E..U+001F, U+007F, U+FEFF). NOT reproduced: ftfy's mojibake repair (re-decoding text that
//           was decoded with the wrong codec), its own HTML-entity pass, C1-control and terminal-escape fixes and
//           NFC normalisation. Plain ASCII text (all reference cases, all IU reports) is unaffected by these.
//        b. HTML unescape applied twice (html_unescape, Python's html.unescape rules): &#NN; and &#xHH; (the ';'
//           optional; code points 0x80..0x9F as Windows-1252, 0 / surrogates / > 0x10FFFF -> U+FFFD, other
//           invalid code points removed) and the named entities amp lt gt quot apos nbsp (and AMP LT GT QUOT);
//           legacy names work without ';' (amp lt gt quot nbsp) and as the longest prefix of a longer name
//           ("&ampx" -> "&x"). The full HTML5 entity table (2,231 names) is NOT reproduced: other names stay as text.
//        c. whitespace runs -> one space, strip; whitespace = Python's str.isspace() set.
//        d. lower-case: exact for ASCII; for other scripts a documented approximation (Latin-1, Latin Extended-A,
//           Latin Extended Additional, Greek, Cyrillic, Armenian, fullwidth A-Z), not the full Unicode case tables.
//   2. pre-tokenise (clip_pretokenize) by the reference pattern, case-insensitive, tried in this order at each
//      position (a regex alternation, no backtracking into an earlier piece):
//        <|startoftext|> | <|endoftext|> | 's | 't | 're | 've | 'm | 'll | 'd | \p{L}+ | \p{N} | [^\s\p{L}\p{N}]+
//      Character classes are exact for ASCII. For other code points (clip_char_class): whitespace is Python's
//      str.isspace() set; numbers (\p{N}) are the listed decimal-digit blocks, super/subscript digits, vulgar
//      fractions, number forms, circled and dingbat numbers; "other" ([^\s\p{L}\p{N}]) is Latin-1 punctuation and
//      symbols, the common combining-mark blocks (U+0300..U+036F, U+1AB0..U+1AFF, U+1DC0..U+1DFF, U+20D0..U+20FF,
//      U+FE20..U+FE2F), general punctuation, currency, arrows, mathematical and technical symbols, box drawing,
//      shapes, dingbats, CJK punctuation, fullwidth punctuation, private use, specials and emoji; every other
//      code point counts as a letter (so spacing/combining marks of Indic and other scripts are not split off as
//      the reference would).
//   3. each piece -> its UTF-8 bytes -> one symbol per byte through bytes_to_unicode (the last symbol gets "</w>")
//      -> BPE: repeatedly take the adjacent pair of lowest merge rank and merge all its non-overlapping
//      occurrences left to right, until no adjacent pair is a merge -> ids from the vocabulary. Results are cached
//      per piece (a map shared by copies of the tokenizer, guarded by a mutex, cleared when it reaches 65,536 words).
//
// BYTES_TO_UNICODE. A reversible map from bytes to printable code points: bytes '!'..'~', '¡'..'¬', '®'..'ÿ' (188
// bytes) map to themselves; the remaining 68 bytes, in increasing order (0..32, 127..160, 173), map to U+0100,
// U+0101, ... (so space 0x20 -> U+0120 'Ġ'). Vocabulary ids 0..255 are the 256 symbols in that printable-first order.
//
// VOCABULARY of the CLIP merges file (from_clip_merges): ids 0..255 the byte symbols, 256..511 the same with
// "</w>", then one per merge (its two parts joined, in rank order), then <|startoftext|> and <|endoftext|>
// (49406 and 49407 for the 48,894 merges that the reference uses: file lines 2..48,895). The Hugging Face layout
// (from_hf_folder: vocab.json + merges.txt whose first line is "#version: ..."; merges as transformers'
// CLIPTokenizer reads them, at most 48,894) takes the ids from vocab.json.
//
// MODEL INPUT (encode_for_model): [start] + ids + [end], truncated to `context` positions with the end token kept
// last (the reference's truncate=True), then padded to `context`. The pad id differs by model: SD 1.x pads with
// <|endoftext|> (49407), SD 2.x with "!" (id 0). The default is the tokenizer's pad id: <|endoftext|>, or the
// pad_token of a diffusers folder's special_tokens_map.json / tokenizer_config.json.
// decode(ids) is the reference's: token strings joined, mapped back to bytes, UTF-8 decoded (invalid sequences ->
// U+FFFD), "</w>" -> " ". Special tokens (and padding) are decoded as their text unless skip_special is set.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace cxr::diffusion {

constexpr int kClipNumMerges = 48894;   // merges the reference uses (49152 - 256 - 2)
constexpr int kClipStartId = 49406;     // <|startoftext|> with the standard vocabulary
constexpr int kClipEndId = 49407;       // <|endoftext|>
constexpr int kClipContext = 77;        // positions of the text encoder
constexpr const char* kClipStartToken = "<|startoftext|>";
constexpr const char* kClipEndToken = "<|endoftext|>";

// bytes_to_unicode: the code point of each byte (indexed by byte value).
const std::array<char32_t, 256>& clip_byte_to_unicode();
// The byte of vocabulary id k for k < 256 (the printable-first order).
const std::array<uint8_t, 256>& clip_byte_order();

// Character classes of the pre-tokeniser (exact for ASCII, the documented approximation elsewhere).
enum class ClipCharClass { space, letter, number, other };
ClipCharClass clip_char_class(char32_t c);

// UTF-8 helpers (invalid input sequences become U+FFFD, one per maximal invalid subpart).
std::u32string utf8_to_u32(const std::string& s);
std::string u32_to_utf8(const std::u32string& s);

// One pass of Python's html.unescape with the entity subset above.
std::string html_unescape(const std::string& text);
// Step 1 of the pipeline: ftfy subset, html_unescape twice, whitespace collapsed and stripped, lower-cased.
std::string clip_normalize(const std::string& text);
// Step 2: the pieces of `text` (normally already normalised) by the reference pattern, each as UTF-8.
std::vector<std::string> clip_pretokenize(const std::string& text);

class ClipTokenizer {
public:
    // The original CLIP merges file (bpe_simple_vocab_16e6.txt.gz, plain or gzip): a version header line, then
    // merges "a b" one per line; the first `num_merges` are used (48,894 for CLIP; smaller for test files).
    static ClipTokenizer from_clip_merges(const std::string& path, int num_merges = kClipNumMerges);
    // A diffusers/transformers tokenizer folder: `dir` holds vocab.json and merges.txt (or, as transformers 5 saves
    // it, only tokenizer.json), or is a pipeline folder with them under tokenizer/. special_tokens_map.json (or
    // tokenizer_config.json), when present, gives pad_token.
    static ClipTokenizer from_hf_folder(const std::string& dir);
    // The same from explicit files.
    static ClipTokenizer from_hf_files(const std::string& vocab_json, const std::string& merges_txt);
    // The vocabulary and merges of a tokenizers-library tokenizer.json (model.type "BPE"; merges as "a b" strings
    // or ["a", "b"] pairs). Its normaliser and pre-tokeniser sections are not read: CLIP's are built in.
    static ClipTokenizer from_hf_tokenizer_json(const std::string& path);

    // BPE ids of the text, without start/end tokens.
    std::vector<int> encode(const std::string& text) const;
    // [start] + ids + [end], truncated to `context` keeping end last, padded with pad_id (-1: pad_id()).
    std::vector<int> encode_for_model(const std::string& text, int context = kClipContext, int pad_id = -1) const;
    std::string decode(const std::vector<int>& ids, bool skip_special = false) const;
    // Number of BPE tokens without start/end (encode(text).size()); a prompt fits the encoder when <= context - 2.
    int count_tokens(const std::string& text) const;
    // An adapter with data::TokenCounter's signature (std::function<int(const std::string&)>), e.g. for
    // data::fit_prompt and data::balanced_expansion; it holds a copy of this tokenizer (cheap: shared tables).
    std::function<int(const std::string&)> token_counter() const;

    // The BPE symbols of one pre-token (its bytes through bytes_to_unicode, merged), e.g. {"low", "er</w>"}.
    std::vector<std::string> bpe_symbols(const std::string& piece) const;

    int vocab_size() const;
    int start_id() const;
    int end_id() const;
    int pad_id() const;
    int token_id(const std::string& token) const;  // -1 when absent
    const std::string& token(int id) const;        // the vocabulary string of an id (throws when out of range)
    int num_merges() const;

private:
    struct Tables;
    struct WordCache;
    ClipTokenizer() = default;
    static ClipTokenizer build(std::vector<std::string> vocab_by_id, std::unordered_map<std::string, int> vocab,
                               const std::vector<std::pair<std::string, std::string>>& merges,
                               const std::vector<int>& merge_lines, const std::string& source);
    std::vector<int> bpe_ids(const std::string& piece) const;

    std::shared_ptr<const Tables> tables_;
    std::shared_ptr<WordCache> cache_;
};

}  // namespace cxr::diffusion
