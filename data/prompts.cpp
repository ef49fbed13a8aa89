// Prompt construction, the 77-token fit and the RoentGen-v2 balanced expansions (rules in data/prompts.h).
#include "data/prompts.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "data/labels.h"
#include "tensor/error.h"
#include "tensor/generator.h"

namespace cxr::data {

namespace {


bool is_list_number(const std::string& s) {  // "1." or "12)" etc.
    if (s.size() < 2) return false;
    for (size_t i = 0; i + 1 < s.size(); ++i)
        if (!std::isdigit((unsigned char)s[i])) return false;
    return s.back() == '.' || s.back() == ')';
}

std::string join(const std::vector<std::string>& parts, size_t n, char sep) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += (i ? std::string(1, sep) : "") + parts[i];
    return out;
}

}  // namespace

int conservative_token_count(const std::string& text) {
    std::string s = collapse_whitespace(text);
    for (char& c : s) c = (char)std::tolower((unsigned char)c);
    const size_t n = s.size();
    int count = 0;
    size_t i = 0;
    auto is_alpha = [](unsigned char c) { return std::isalpha(c) || c >= 0x80; };
    while (i < n) {
        const unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            ++i;
        } else if (c == '\'') {
            static const char* contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
            size_t len = 0;
            for (const char* k : contractions)
                if (s.compare(i, std::char_traits<char>::length(k), k) == 0) len = std::char_traits<char>::length(k);
            if (len) {
                count += 1;
                i += len;
            } else {  // a punctuation run starting with the quote
                while (i < n && s[i] != ' ' && !is_alpha((unsigned char)s[i]) && !std::isdigit((unsigned char)s[i])) {
                    ++count;
                    ++i;
                }
            }
        } else if (std::isdigit(c)) {
            ++count;
            ++i;
        } else if (is_alpha(c)) {
            size_t j = i;
            bool ascii = true;
            while (j < n && is_alpha((unsigned char)s[j])) ascii = ascii && (unsigned char)s[j++] < 0x80;
            const int len = (int)(j - i);
            count += ascii ? (len + 2) / 3 : len;
            i = j;
        } else {
            while (i < n && s[i] != ' ' && !is_alpha((unsigned char)s[i]) && !std::isdigit((unsigned char)s[i])) {
                ++count;
                ++i;
            }
        }
    }
    return count;
}

std::string prompt_prefix(int age, Race race, Sex sex) {
    CXR_CHECK(race != Race::other_unknown, "a prompt needs a known race category (Asian, Black, Hispanic, White)");
    CXR_CHECK(sex != Sex::unknown, "a prompt needs a known sex");
    return std::to_string(age) + " year old " + race_name(race) + " " + sex_word(sex) + ".";
}

std::optional<PromptDemographics> parse_prompt_prefix(const std::string& prompt) {
    // "<digits> year old <race> <sex>." with single spaces after whitespace collapsing
    const std::vector<std::string> w = split_string(collapse_whitespace(prompt), ' ');
    if (w.size() < 5 || w[1] != "year" || w[2] != "old") return std::nullopt;
    if (w[0].empty() || w[0].size() > 3 || w[0].find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    std::string sex_token = w[4];
    if (sex_token.empty() || sex_token.back() != '.') return std::nullopt;
    sex_token.pop_back();
    auto lower = [](std::string t) {
        for (char& c : t) c = (char)std::tolower((unsigned char)c);
        return t;
    };
    PromptDemographics d;
    d.age = std::stoi(w[0]);
    for (Race r : {Race::asian, Race::black, Race::hispanic, Race::white})
        if (lower(w[3]) == lower(race_name(r))) d.race = r;
    for (Sex x : {Sex::male, Sex::female})
        if (lower(sex_token) == sex_word(x)) d.sex = x;
    if (d.race == Race::other_unknown || d.sex == Sex::unknown) return std::nullopt;
    return d;
}

std::vector<std::string> split_sentences(const std::string& text) {
    const std::string s = collapse_whitespace(text);
    std::vector<std::string> raw;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if ((c == '.' || c == '!' || c == '?') && (i + 1 == s.size() || s[i + 1] == ' ')) {
            raw.push_back(s.substr(start, i + 1 - start));
            start = i + 2;
        }
    }
    if (start < s.size()) raw.push_back(s.substr(start));
    std::vector<std::string> out;
    std::string pending;
    for (auto& r : raw) {
        if (r.empty()) continue;
        if (is_list_number(r)) {
            pending += (pending.empty() ? "" : " ") + r;
            continue;
        }
        out.push_back(pending.empty() ? r : pending + " " + r);
        pending.clear();
    }
    if (!pending.empty()) out.push_back(pending);
    return out;
}

FitResult fit_prompt(int age, Race race, Sex sex, const std::string& impression, const TokenCounter& count,
                     int budget, const std::function<void(const std::string&)>& log) {
    const TokenCounter counter = count ? count : TokenCounter(conservative_token_count);
    const std::string prefix = prompt_prefix(age, race, sex);
    const std::string original = collapse_whitespace(impression);
    auto make = [&](const std::string& imp) { return imp.empty() ? prefix : prefix + " " + imp; };
    FitResult res;
    res.impression = original;
    res.prompt = make(original);
    res.tokens = counter(res.prompt);
    if (res.tokens <= budget) return res;

    std::vector<std::string> sentences = split_sentences(original);
    size_t keep = sentences.size();
    std::string imp = original;
    while (keep > 1 && counter(make(imp)) > budget) imp = join(sentences, --keep, ' ');
    if (counter(make(imp)) > budget) {
        std::vector<std::string> words = split_string(imp, ' ');
        size_t w = words.size();
        while (w > 0 && counter(make(join(words, w, ' '))) > budget) --w;
        imp = join(words, w, ' ');
    }
    res.impression = imp;
    res.prompt = make(imp);
    res.tokens = counter(res.prompt);
    res.shortened = true;
    CXR_CHECK(res.tokens <= budget, "the prompt prefix '", prefix, "' alone exceeds the token budget of ", budget);
    if (log)
        log("shortened impression (" + std::to_string(counter(make(original))) + " -> " + std::to_string(res.tokens) +
            " tokens): \"" + original + "\" -> \"" + imp + "\"");
    return res;
}

namespace {

int draw_age(double original, double u) {
    const int delta = std::min(10, (int)std::floor(u * 11.0)) - 5;  // uniform in {-5, ..., 5}
    return std::clamp((int)std::lround(original) + delta, 18, 90);
}

template <class Emit>
std::vector<PromptItem> expand(const std::vector<Record>& sources, uint64_t seed, const TokenCounter& count,
                               ExpansionStats* stats, const std::function<void(const std::string&)>& log,
                               Emit emit) {
    ExpansionStats st;
    std::vector<PromptItem> out;
    for (size_t i = 0; i < sources.size(); ++i) {
        const Record& r = sources[i];
        ++st.sources;
        if (!r.has_age()) {
            ++st.skipped_no_age;
            continue;
        }
        if (collapse_whitespace(r.report).empty()) {
            ++st.skipped_no_report;
            continue;
        }
        double u[8];
        tensor::fill_uniform_f64(u, 8, seed, 16 * (uint64_t)i, 0.0, 1.0);
        emit(r, u, [&](int age, Sex sex, Race race) {
            FitResult f = fit_prompt(age, race, sex, r.report, count, kClipTextTokens, log);
            PromptItem p;
            p.prompt = f.prompt;
            p.impression = f.impression;
            p.age = age;
            p.sex = sex;
            p.race = race;
            p.labels = r.labels;
            p.source = i;
            p.shortened = f.shortened;
            st.shortened += f.shortened ? 1 : 0;
            out.push_back(std::move(p));
        });
    }
    if (stats) *stats = st;
    return out;
}

}  // namespace

std::vector<PromptItem> balanced_expansion(const std::vector<Record>& sources, uint64_t seed, const TokenCounter& count,
                                           ExpansionStats* stats, const std::function<void(const std::string&)>& log) {
    return expand(sources, seed, count, stats, log, [](const Record& r, const double* u, auto&& add) {
        int k = 0;
        for (Sex sex : {Sex::male, Sex::female})
            for (Race race : known_races()) add(draw_age(r.age, u[k++]), sex, race);
    });
}

std::vector<PromptItem> uniform_attribute_resampling(const std::vector<Record>& sources, uint64_t seed,
                                                     const TokenCounter& count, ExpansionStats* stats,
                                                     const std::function<void(const std::string&)>& log) {
    return expand(sources, seed, count, stats, log, [](const Record& r, const double* u, auto&& add) {
        const Sex sex = u[0] < 0.5 ? Sex::male : Sex::female;
        const Race race = known_races()[std::min(3, (int)std::floor(u[1] * 4.0))];
        add(draw_age(r.age, u[2]), sex, race);
    });
}

}  // namespace cxr::data
