// Command-line parsing for the cxr subcommands (see args.h).
#include "apps/args.h"

#include <iostream>
#include <sstream>

#include "tensor/error.h"

namespace cxr::apps {

Args::Args(std::string command, std::string summary, std::vector<OptionSpec> options)
    : command_(std::move(command)), summary_(std::move(summary)), options_(std::move(options)) {}

const OptionSpec& Args::spec(const std::string& name) const {
    for (const auto& o : options_)
        if (o.name == name) return o;
    CXR_FAIL("cxr ", command_, ": unknown option --", name, " (see cxr ", command_, " --help)");
}

bool Args::parse(int argc, char** argv) {
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::cout << help_text();
            return false;
        }
        CXR_CHECK(a.rfind("--", 0) == 0, "cxr ", command_, ": unexpected argument '", a, "' (see cxr ", command_,
                  " --help)");
        std::string name = a.substr(2), value;
        bool has_value = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_value = true;
        }
        const OptionSpec& s = spec(name);
        if (s.value_name.empty()) {
            CXR_CHECK(!has_value, "cxr ", command_, ": --", name, " takes no value");
            values_[name] = "1";
        } else {
            if (!has_value) {
                CXR_CHECK(i + 1 < argc, "cxr ", command_, ": --", name, " needs a value (", s.value_name, ")");
                value = argv[++i];
            }
            values_[name] = value;
        }
    }
    return true;
}

std::string Args::help_text() const {
    std::ostringstream os;
    os << "usage: cxr " << command_ << (options_.empty() ? "" : " [options]") << "\n\n" << summary_ << "\n";
    if (!options_.empty()) os << "\noptions:\n";
    for (const auto& o : options_) {
        std::string left = "  --" + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
        os << left << std::string(left.size() < 28 ? 28 - left.size() : 2, ' ') << o.help;
        if (!o.default_value.empty()) os << " (default: " << o.default_value << ")";
        os << "\n";
    }
    os << "  --help                    show this help\n";
    return os.str();
}

bool Args::flag(const std::string& name) const {
    spec(name);
    return values_.count(name) > 0;
}

std::string Args::get(const std::string& name) const {
    const OptionSpec& s = spec(name);
    auto it = values_.find(name);
    return it == values_.end() ? s.default_value : it->second;
}

int64_t Args::get_int(const std::string& name) const {
    std::string v = get(name);
    try {
        size_t used = 0;
        int64_t x = std::stoll(v, &used);
        if (used == v.size()) return x;
    } catch (...) {
    }
    CXR_FAIL("cxr ", command_, ": --", name, " expects an integer, got '", v, "'");
}

double Args::get_double(const std::string& name) const {
    std::string v = get(name);
    try {
        size_t used = 0;
        double x = std::stod(v, &used);
        if (used == v.size()) return x;
    } catch (...) {
    }
    CXR_FAIL("cxr ", command_, ": --", name, " expects a number, got '", v, "'");
}

}  // namespace cxr::apps
