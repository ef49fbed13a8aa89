// cxr::Error — the one exception type of the library, with a helper macro that adds file:line context.
// Library code throws; the CLI catches, prints what() and exits non-zero (DESIGN.md §7).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cxr {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void build_message(std::ostringstream&) {}
template <class T, class... Rest>
void build_message(std::ostringstream& os, const T& first, const Rest&... rest) {
    os << first;
    build_message(os, rest...);
}
template <class... Args>
[[noreturn]] void throw_error(const char* file, int line, const Args&... args) {
    std::ostringstream os;
    build_message(os, args...);
    os << " [" << file << ":" << line << "]";
    throw Error(os.str());
}
}  // namespace detail

}  // namespace cxr

// CXR_CHECK(cond, "message parts", value, ...) throws cxr::Error naming the source location when cond is false.
#define CXR_CHECK(cond, ...)                                                                  \
    do {                                                                                      \
        if (!(cond)) ::cxr::detail::throw_error(__FILE__, __LINE__, __VA_ARGS__);             \
    } while (0)

#define CXR_FAIL(...) ::cxr::detail::throw_error(__FILE__, __LINE__, __VA_ARGS__)
