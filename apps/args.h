// A small command-line parser for the cxr subcommands: `--name value`, `--name=value` and boolean `--flag`.
// Unknown options are errors that name the option and point at --help.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace cxr::apps {

struct OptionSpec {
    std::string name;         // without the leading dashes
    std::string value_name;   // empty for a boolean flag
    std::string help;
    std::string default_value;
};

class Args {
public:
    Args(std::string command, std::string summary, std::vector<OptionSpec> options);
    // Parses argv (after the subcommand name). Returns false when --help was given (help already printed).
    bool parse(int argc, char** argv);
    std::string help_text() const;

    bool flag(const std::string& name) const;
    std::string get(const std::string& name) const;  // the value or the default
    int64_t get_int(const std::string& name) const;
    double get_double(const std::string& name) const;

private:
    const OptionSpec& spec(const std::string& name) const;
    std::string command_, summary_;
    std::vector<OptionSpec> options_;
    std::map<std::string, std::string> values_;
};

}  // namespace cxr::apps
