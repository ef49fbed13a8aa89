// Tests of the demographic prompts (data/prompts.h): the prefix format, the sentence rule, the conservative
// CLIP token counter on hand-counted strings, the 77-token fit (trailing sentences first, then words, every
// shortening logged), the RoentGen-v2 balanced expansion (8 sex x race combinations, ages within +-5 clamped to
// [18, 90], labels copied) and the seed-004 uniform-attribute resampling (uniform attributes within binomial
// tolerance, prevalence kept), determinism by seed, and [real-data] checks on the IU reports and the 2,009
// reference CLIP tokenizations. There is no CLIP tokenizer in cxr yet: the budget is checked with the
// conservative counter, which the last test shows never undercounts the reference tokenizer.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "data/csv.h"
#include "data/labels.h"
#include "data/prompts.h"
#include "tests/support/testing.h"

using namespace cxr::data;

namespace {

int word_count(const std::string& s) {  // a simple counter for the fit tests: one token per word
    int n = 0;
    bool in = false;
    for (char c : s) {
        const bool w = c != ' ';
        if (w && !in) ++n;
        in = w;
    }
    return n;
}

Record source(double age, const std::string& report, LabelValue cardio = LabelValue::negative) {
    Record r;
    r.age = age;
    r.report = report;
    r.sex = Sex::male;
    r.race = Race::white;
    r.labels[label_index("Cardiomegaly")] = cardio;
    return r;
}

}  // namespace

TEST_CASE("prompts: prefix format", "[cpu][data][prompts]") {
    CHECK(prompt_prefix(59, Race::black, Sex::female) == "59 year old Black female.");
    CHECK(prompt_prefix(18, Race::asian, Sex::male) == "18 year old Asian male.");
    CHECK(prompt_prefix(90, Race::hispanic, Sex::male) == "90 year old Hispanic male.");
    CHECK(prompt_prefix(40, Race::white, Sex::female) == "40 year old White female.");
    CHECK_THROWS_WITH(prompt_prefix(40, Race::other_unknown, Sex::female), Catch::Contains("known race"));
    CHECK_THROWS_WITH(prompt_prefix(40, Race::white, Sex::unknown), Catch::Contains("known sex"));
    const FitResult f = fit_prompt(59, Race::black, Sex::female, "  Normal   chest x-XXXX. ");
    CHECK(f.prompt == "59 year old Black female. Normal chest x-XXXX.");  // whitespace collapsed
    CHECK_FALSE(f.shortened);
    CHECK(fit_prompt(59, Race::black, Sex::female, "").prompt == "59 year old Black female.");
}

TEST_CASE("prompts: sentence splitting", "[cpu][data][prompts]") {
    using V = std::vector<std::string>;
    CHECK(split_sentences("No effusion. Clear lungs.") == V{"No effusion.", "Clear lungs."});
    CHECK(split_sentences("Is it? Yes! Done") == V{"Is it?", "Yes!", "Done"});
    // A period not followed by a space (decimal, "x-XXXX.Next") does not end a sentence.
    CHECK(split_sentences("Nodule 2.5 cm.Stable.") == V{"Nodule 2.5 cm.Stable."});
    // List numbers join the sentence that follows.
    CHECK(split_sentences("1. Cardiomegaly. 2. No effusion.") == V{"1. Cardiomegaly.", "2. No effusion."});
    CHECK(split_sentences("  A.\n\n  B.  ") == V{"A.", "B."});
    CHECK(split_sentences("").empty());
}

TEST_CASE("prompts: conservative token counter on hand-counted strings", "[cpu][data][prompts]") {
    CHECK(conservative_token_count("") == 0);
    CHECK(conservative_token_count("no") == 1);             // letters: ceil(2/3)
    CHECK(conservative_token_count("cardiomegaly") == 4);   // ceil(12/3)
    CHECK(conservative_token_count("Cardiomegaly.") == 5);  // + one per punctuation byte
    CHECK(conservative_token_count("59 year old") == 2 + 2 + 1);  // digits one each
    CHECK(conservative_token_count("it's") == 2);           // "it" + the contraction "'s"
    CHECK(conservative_token_count("x-XXXX") == 1 + 1 + 2);
    CHECK(conservative_token_count("...") == 3);
    CHECK(conservative_token_count("a   b") == 2);          // whitespace runs are free
}

TEST_CASE("prompts: the fit drops trailing sentences first, then words, and logs it", "[cpu][data][prompts]") {
    // Prefix "50 year old White male." = 5 words.
    const std::string imp = "One two three. Four five. Six seven eight nine.";
    std::vector<std::string> log;
    auto logger = [&](const std::string& s) { log.push_back(s); };
    FitResult f = fit_prompt(50, Race::white, Sex::male, imp, word_count, 14, logger);  // 5 + 9 = 14 fits
    CHECK_FALSE(f.shortened);
    CHECK(f.impression == imp);
    CHECK(log.empty());
    f = fit_prompt(50, Race::white, Sex::male, imp, word_count, 13, logger);  // drop "Six ... nine."
    CHECK(f.shortened);
    CHECK(f.impression == "One two three. Four five.");
    CHECK(f.tokens == 10);
    f = fit_prompt(50, Race::white, Sex::male, imp, word_count, 9, logger);  // only the first sentence fits
    CHECK(f.impression == "One two three.");
    f = fit_prompt(50, Race::white, Sex::male, imp, word_count, 7, logger);  // then words of the first sentence
    CHECK(f.impression == "One two");
    CHECK(f.prompt == "50 year old White male. One two");
    CHECK(f.tokens == 7);
    f = fit_prompt(50, Race::white, Sex::male, imp, word_count, 5, logger);  // nothing fits: the prefix alone
    CHECK(f.impression.empty());
    CHECK(f.prompt == "50 year old White male.");
    REQUIRE(log.size() == 4);  // every shortened impression logged once
    CHECK(log[0].find("\"" + imp + "\" -> \"One two three. Four five.\"") != std::string::npos);
    // The prefix alone over the budget is an error.
    CHECK_THROWS_WITH(fit_prompt(50, Race::white, Sex::male, imp, word_count, 4), Catch::Contains("prefix"));
}

TEST_CASE("prompts: balanced expansion gives all 8 combinations, ages within +-5, labels copied",
          "[cpu][data][prompts]") {
    std::vector<Record> src = {source(50, "Cardiomegaly.", LabelValue::positive), source(20, "Normal chest."),
                               source(88, "Small effusion.", LabelValue::uncertain),
                               source(std::nan(""), "No age."), source(60, "   ")};
    ExpansionStats st;
    const auto items = balanced_expansion(src, 7, {}, &st);
    CHECK(st.sources == 5);
    CHECK(st.skipped_no_age == 1);
    CHECK(st.skipped_no_report == 1);
    REQUIRE(items.size() == 3 * 8);
    for (size_t s = 0; s < 3; ++s) {
        std::set<std::pair<Sex, Race>> combos;
        for (size_t k = 0; k < 8; ++k) {
            const PromptItem& p = items[s * 8 + k];
            CHECK(p.source == s);
            combos.insert({p.sex, p.race});
            const double age = src[s].age;
            CHECK(p.age >= std::max(18.0, age - 5));
            CHECK(p.age <= std::min(90.0, age + 5));
            CHECK(p.labels == src[s].labels);
            CHECK(p.prompt == prompt_prefix(p.age, p.race, p.sex) + " " + src[s].report);
        }
        CHECK(combos.size() == 8);
    }
    // Over many sources every age offset in -5..5 occurs and clamping holds at both ends.
    std::vector<Record> many(200, source(50, "x"));
    std::map<int, int> offsets;
    for (const auto& p : balanced_expansion(many, 3)) ++offsets[p.age - 50];
    CHECK(offsets.size() == 11);
    CHECK(offsets.begin()->first == -5);
    CHECK(offsets.rbegin()->first == 5);
    std::vector<Record> young(100, source(19, "x")), old(100, source(89, "x"));
    for (const auto& p : balanced_expansion(young, 3)) CHECK(p.age >= 18);
    for (const auto& p : balanced_expansion(old, 3)) CHECK(p.age <= 90);
}

TEST_CASE("prompts: label distribution of the balanced expansion equals the source's", "[cpu][data][prompts]") {
    std::vector<Record> src;
    for (int i = 0; i < 300; ++i)
        src.push_back(source(30 + i % 50, "Finding " + std::to_string(i) + ".",
                             i % 3 == 0 ? LabelValue::positive : i % 3 == 1 ? LabelValue::negative : LabelValue::unknown));
    const auto items = balanced_expansion(src, 11);
    REQUIRE(items.size() == 8 * src.size());
    std::map<LabelValue, int> in, out;
    for (const auto& r : src) ++in[r.labels[label_index("Cardiomegaly")]];
    for (const auto& p : items) ++out[p.labels[label_index("Cardiomegaly")]];
    for (const auto& [v, n] : in) CHECK(out[v] == 8 * n);  // exactly 8x each
}

TEST_CASE("prompts: uniform-attribute (seed-004) resampling", "[cpu][data][prompts]") {
    const int n = 4000;
    std::vector<Record> src;
    for (int i = 0; i < n; ++i)
        src.push_back(source(40 + i % 30, "Impression " + std::to_string(i) + ".",
                             i % 5 == 0 ? LabelValue::positive : LabelValue::negative));
    const auto items = uniform_attribute_resampling(src, 4);
    REQUIRE(items.size() == (size_t)n);
    int female = 0, positives = 0;
    std::map<Race, int> race;
    for (size_t i = 0; i < items.size(); ++i) {
        female += items[i].sex == Sex::female;
        ++race[items[i].race];
        positives += items[i].labels[label_index("Cardiomegaly")] == LabelValue::positive;
        CHECK(items[i].source == i);
        CHECK(std::abs(items[i].age - src[i].age) <= 5);
    }
    // Binomial tolerance: 4 standard deviations.
    CHECK(std::abs(female - n * 0.5) <= 4 * std::sqrt(n * 0.25));
    REQUIRE(race.size() == 4);
    for (const auto& [r, c] : race) CHECK(std::abs(c - n * 0.25) <= 4 * std::sqrt(n * 0.25 * 0.75));
    CHECK(positives == n / 5);  // prevalence kept exactly (one prompt per source, labels copied)
}

TEST_CASE("prompts: deterministic by seed, each source independent of the others", "[cpu][data][prompts]") {
    std::vector<Record> src;
    for (int i = 0; i < 50; ++i) src.push_back(source(45 + i % 10, "Impression " + std::to_string(i) + "."));
    auto ages = [](const std::vector<PromptItem>& v) {
        std::vector<std::string> out;
        for (const auto& p : v) out.push_back(p.prompt);
        return out;
    };
    CHECK(ages(balanced_expansion(src, 5)) == ages(balanced_expansion(src, 5)));
    CHECK(ages(balanced_expansion(src, 5)) != ages(balanced_expansion(src, 6)));
    CHECK(ages(uniform_attribute_resampling(src, 5)) == ages(uniform_attribute_resampling(src, 5)));
    CHECK(ages(uniform_attribute_resampling(src, 5)) != ages(uniform_attribute_resampling(src, 6)));
    // The first 20 sources give the same prompts alone as within the 50.
    std::vector<Record> head(src.begin(), src.begin() + 20);
    const auto all = ages(balanced_expansion(src, 5)), part = ages(balanced_expansion(head, 5));
    CHECK(std::vector<std::string>(all.begin(), all.begin() + 160) == part);
}

TEST_CASE("prompts: IU impressions fit the 77-token budget in the balanced expansion", "[real-data][data][prompts]") {
    CXR_SKIP_WITHOUT_REAL_DATA();
    const auto dir = std::filesystem::path(cxr::testing::real_data_dir());
    const CsvTable t = CsvTable::read((dir / "reports" / "iu_xray_reports.csv").string());
    REQUIRE(t.num_rows() == 3921);
    std::vector<Record> src;
    for (size_t r = 0; r < t.num_rows(); ++r) src.push_back(source(18 + (double)(r % 73), t.at(r, "impression")));
    ExpansionStats st;
    std::vector<std::string> log;
    const auto items = balanced_expansion(src, 0, {}, &st, [&](const std::string& s) { log.push_back(s); });
    CHECK(st.skipped_no_age == 0);
    REQUIRE(items.size() == 8 * (src.size() - st.skipped_no_report));
    CHECK(log.size() == st.shortened);  // one log line per shortened impression
    size_t shortened = 0;
    for (const auto& p : items) {
        CHECK(conservative_token_count(p.prompt) <= kClipTextTokens);
        shortened += p.shortened;
        CHECK(p.prompt.rfind(prompt_prefix(p.age, p.race, p.sex), 0) == 0);  // the prefix is never cut
    }
    CHECK(shortened == st.shortened);
    CHECK(st.shortened > 0);  // some long IU impressions must be cut
    WARN("IU balanced expansion: " << items.size() << " prompts, " << st.shortened << " shortened, "
                                   << st.skipped_no_report << " sources without impression");
}

TEST_CASE("prompts: the conservative counter never undercounts the reference CLIP tokenizer",
          "[real-data][data][prompts]") {
    CXR_SKIP_WITHOUT_REAL_DATA();
    const auto path = std::filesystem::path(cxr::testing::real_data_dir()) / "clip" / "tokenizer_cases.json";
    std::ifstream in(path);
    REQUIRE(in.good());
    const nlohmann::json cases = nlohmann::json::parse(in);
    REQUIRE(cases.size() == 2009);
    double over = 0, total = 0;
    int under = 0;
    for (const auto& c : cases) {
        const std::string text = c.at("text").get<std::string>();
        const int ref = (int)c.at("ids").size();
        const int est = conservative_token_count(text);
        if (est < ref) {
            ++under;
            FAIL_CHECK("undercount: " << est << " < " << ref << " for \"" << text << "\"");
        }
        over += est - ref;
        total += ref;
    }
    CHECK(under == 0);
    WARN("conservative counter overcounts by " << 100.0 * over / std::max(1.0, total) << " % on average");
}

TEST_CASE("parse_prompt_prefix inverts prompt_prefix and rejects other prompts", "[cpu][data][prompts]") {
    for (Race r : {Race::asian, Race::black, Race::hispanic, Race::white})
        for (Sex s : {Sex::male, Sex::female})
            for (int age : {0, 18, 66, 101}) {
                const auto d = parse_prompt_prefix(prompt_prefix(age, r, s) + " No acute cardiopulmonary process.");
                REQUIRE(d.has_value());
                CHECK(d->age == age);
                CHECK(d->race == r);
                CHECK(d->sex == s);
            }
    const auto lower = parse_prompt_prefix("  40 year  old black MALE. cardiomegaly");  // case and spacing
    REQUIRE(lower.has_value());
    CHECK((lower->race == Race::black && lower->sex == Sex::male && lower->age == 40));
    CHECK_FALSE(parse_prompt_prefix("a chest x-ray").has_value());
    CHECK_FALSE(parse_prompt_prefix("40 year old martian male. x").has_value());
    CHECK_FALSE(parse_prompt_prefix("forty year old white male. x").has_value());
    CHECK_FALSE(parse_prompt_prefix("40 year old white male with effusion").has_value());  // no period after sex
    CHECK_FALSE(parse_prompt_prefix("40 year old white").has_value());
}
