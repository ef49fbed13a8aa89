// Demographic text prompts for the chest X-ray generator and the balanced synthetic-set designs of RoentGen-v2
// (Moroianu et al., "Improving Performance, Robustness, and Fairness of Radiographic AI Models with
// Finely-Controllable Synthetic Data", 2025; prompt format of Bluethgen et al., RoentGen, Nat. Biomed. Eng. 2024).
//
// PROMPT: "<AGE> year old <RACE> <SEX>. <IMPRESSION>", e.g. "59 year old Black female. Normal chest x-XXXX."
//   AGE is a whole number of years (rounded), RACE one of Asian, Black, Hispanic, White, SEX male/female.
//   Whitespace runs in the impression are collapsed to one space.
//
// 77-TOKEN FIT. CLIP's text encoder takes 77 positions: <|startoftext|>, at most 75 BPE tokens, <|endoftext|>.
// fit_prompt() keeps the prefix whole and shortens the impression deterministically until count(prompt) <= 75:
//   1. drop whole trailing sentences, one at a time, while more than one sentence is left (sentences end at
//      '.', '!' or '?' followed by a space or the end; "1. Foo. 2. Bar." has the sentences "1. Foo." and
//      "2. Bar." — a sentence made only of a list number is merged with the sentence that follows);
//   2. if the single sentence left is still too long, drop trailing words one at a time;
//   3. if no word fits, the prompt is the prefix alone.
//   Every shortened impression is reported (FitResult::shortened, and the log callback when one is given).
//
// DEFAULT TOKEN COUNTER (conservative_token_count), used until the CLIP tokenizer exists: an upper estimate of
// the number of CLIP BPE tokens (without start/end). CLIP's pre-tokeniser lower-cases the text and splits it into
// contractions ('s 't 're 've 'm 'll 'd), letter runs, single digits and runs of other non-space characters
// (Radford et al. 2021, the reference simple_tokenizer's pattern). BPE then makes at most one token per byte of
// a piece. The estimate counts: 1 per contraction, 1 per digit, 1 per byte of a punctuation/symbol run, 1 per
// byte of a letter run holding non-ASCII bytes, and ceil(L/3) for an ASCII letter run of length L. ceil(L/3) is
// not a proof of an upper bound (a rare word can split finer); it is checked against all 2,009 reference
// tokenizations in ../shared/data/clip/tokenizer_cases.json (tests/data/test_prompts.cpp, [real-data]), where
// it never undercounts and overcounts by about 55 % on average.
//
// BALANCED EXPANSION (RoentGen-v2): for each source impression, all 8 sex x race combinations (male/female x
// Asian/Black/Hispanic/White), each with an age drawn uniformly from the whole years within +-5 of the original
// age (clamped to [18, 90]); labels are copied from the source, so the label distribution of the expanded set is
// the source's. Sources without a known age are skipped (counted in ExpansionStats).
// UNIFORM-ATTRIBUTE RESAMPLING (the study's "seed-004" strategy): one prompt per source impression, sex and race
// drawn uniformly and independently, age drawn as above; labels copied, so label prevalence is kept.
// Randomness: Philox (tensor/generator.h) stream `seed`; source i draws its numbers at word offset 16 * i, so a
// prompt depends only on (seed, i) and not on the other sources.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/record.h"

namespace cxr::data {

using TokenCounter = std::function<int(const std::string&)>;

int conservative_token_count(const std::string& text);
constexpr int kClipTextTokens = 75;  // 77 positions minus start and end tokens

std::string prompt_prefix(int age, Race race, Sex sex);  // "59 year old Black female."
// Sentences of an impression by the rule above (whitespace collapsed, each without surrounding spaces).
// The inverse of prompt_prefix: the age, race and sex of a prompt starting "<AGE> year old <RACE> <SEX>." (race and
// sex words case-insensitive, as users type them), or nullopt when the prompt does not start that way.
struct PromptDemographics {
    int age = 0;
    Race race = Race::other_unknown;
    Sex sex = Sex::unknown;
};
std::optional<PromptDemographics> parse_prompt_prefix(const std::string& prompt);

std::vector<std::string> split_sentences(const std::string& text);

struct FitResult {
    std::string prompt;
    std::string impression;  // the (possibly shortened) impression used
    bool shortened = false;
    int tokens = 0;          // count(prompt) by the counter used
};
// Builds and fits the prompt; `log` (optional) receives one line per shortened impression.
FitResult fit_prompt(int age, Race race, Sex sex, const std::string& impression, const TokenCounter& count = {},
                     int budget = kClipTextTokens, const std::function<void(const std::string&)>& log = {});

struct PromptItem {
    std::string prompt;
    std::string impression;  // after fitting
    int age = 0;
    Sex sex = Sex::unknown;
    Race race = Race::other_unknown;
    std::array<LabelValue, kNumChexpertLabels> labels;
    size_t source = 0;       // index of the source record
    bool shortened = false;
};

struct ExpansionStats {
    size_t sources = 0, skipped_no_age = 0, skipped_no_report = 0, shortened = 0;
};

// Sources: Record::report is the impression, Record::age the original age, labels copied.
std::vector<PromptItem> balanced_expansion(const std::vector<Record>& sources, uint64_t seed,
                                           const TokenCounter& count = {}, ExpansionStats* stats = nullptr,
                                           const std::function<void(const std::string&)>& log = {});
std::vector<PromptItem> uniform_attribute_resampling(const std::vector<Record>& sources, uint64_t seed,
                                                     const TokenCounter& count = {}, ExpansionStats* stats = nullptr,
                                                     const std::function<void(const std::string&)>& log = {});

}  // namespace cxr::data
