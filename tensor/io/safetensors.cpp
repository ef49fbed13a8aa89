// safetensors reader and writer: header parsing and validation, byte layout, atomic write (see safetensors.h
// for the format and the list of checks).
#include "tensor/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace cxr::tensor {

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr const char* kMetadataKey = "__metadata__";

// Valid safetensors dtypes that cxr does not hold.
const char* const kUnsupportedDTypes[] = {"I8",      "I16",     "U16",     "U32", "U64",     "F8_E4M3",
                                          "F8_E5M2", "F8_E8M0", "F4",      "F6_E2M3", "F6_E3M2", "C64"};

std::string where(const std::string& source) { return "safetensors file '" + source + "'"; }

std::string tensor_where(const std::string& source, const std::string& name) {
    return where(source) + ", tensor '" + name + "'";
}

uint64_t read_u64_le(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

void append_u64_le(std::vector<uint8_t>& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back((uint8_t)(v >> (8 * i)));
}

// One tensor entry of a parsed header.
struct EntryInfo {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin;
    uint64_t end;
};

struct HeaderInfo {
    std::map<std::string, std::string> metadata;
    std::vector<EntryInfo> entries;
};

// Maps a safetensors dtype name to a DType; returns "" on success, else what is wrong with the name.
std::string lookup_dtype(const std::string& name, DType* dtype) {
    for (int i = 0; i < kNumDTypes; ++i) {
        if (name == safetensors_dtype_name((DType)i)) {
            *dtype = (DType)i;
            return "";
        }
    }
    const char* supported = "(supported: F32 F64 F16 BF16 I32 I64 U8 BOOL)";
    for (const char* unsupported : kUnsupportedDTypes)
        if (name == unsupported)
            return "dtype " + name + " is a valid safetensors dtype but cxr does not support it " + supported;
    return "unknown dtype '" + name + "' " + supported;
}

// A JSON number that must be a non-negative integer fitting in `limit`.
uint64_t json_to_u64(const Json& v, uint64_t limit, const std::string& context, const char* what) {
    if (v.is_number_unsigned()) {
        uint64_t x = v.get<uint64_t>();
        CXR_CHECK(x <= limit, context, ": ", what, " ", x, " is too large");
        return x;
    }
    if (v.is_number_integer()) CXR_FAIL(context, ": ", what, " is negative (", v.dump(), ")");
    CXR_FAIL(context, ": ", what, " must be a non-negative integer, got ", v.dump());
}

std::vector<EntryInfo> sorted_by_offsets(std::vector<EntryInfo> entries) {
    std::sort(entries.begin(), entries.end(), [](const EntryInfo& a, const EntryInfo& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    return entries;
}

// Parses and validates the JSON header against a byte buffer of buffer_size bytes.
HeaderInfo parse_header(const uint8_t* header, uint64_t header_len, uint64_t buffer_size,
                        const std::string& source) {
    const std::string file = where(source);
    CXR_CHECK(header_len > 0 && header[0] == '{', file, ": the JSON header must start with '{' (got ",
              header_len == 0 ? std::string("an empty header") : "byte " + std::to_string((int)header[0]),
              "); is this a safetensors file?");

    // Duplicate keys are found with the parser callback: one key set per open object.
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    Json::parser_callback_t on_event = [&](int, Json::parse_event_t event, Json& parsed) {
        if (event == Json::parse_event_t::object_start) {
            open_objects.emplace_back();
        } else if (event == Json::parse_event_t::object_end) {
            if (!open_objects.empty()) open_objects.pop_back();
        } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
            const std::string key = parsed.get<std::string>();
            if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
        }
        return true;
    };
    Json root;
    try {
        root = Json::parse(header, header + header_len, on_event);
    } catch (const Json::exception& e) {
        CXR_FAIL(file, ": the header is not valid JSON: ", e.what());
    }
    CXR_CHECK(duplicate.empty(), file, ": duplicate key '", duplicate, "' in the header");
    CXR_CHECK(root.is_object(), file, ": the header must be a JSON object, got ", root.type_name());

    HeaderInfo info;
    for (auto it = root.begin(); it != root.end(); ++it) {
        const std::string& name = it.key();
        const Json& value = it.value();
        if (name == kMetadataKey) {
            if (value.is_null()) continue;
            CXR_CHECK(value.is_object(), file, ": \"__metadata__\" must be an object of strings, got ",
                      value.type_name());
            for (auto m = value.begin(); m != value.end(); ++m) {
                CXR_CHECK(m.value().is_string(), file, ": metadata value of '", m.key(), "' must be a string, got ",
                          m.value().type_name());
                info.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string context = tensor_where(source, name);
        CXR_CHECK(value.is_object(), context, ": the entry must be an object, got ", value.type_name());
        for (const char* field : {"dtype", "shape", "data_offsets"})
            CXR_CHECK(value.contains(field), context, ": missing field \"", field, "\"");

        EntryInfo entry;
        entry.name = name;
        const Json& dtype = value["dtype"];
        CXR_CHECK(dtype.is_string(), context, ": \"dtype\" must be a string, got ", dtype.dump());
        const std::string dtype_problem = lookup_dtype(dtype.get<std::string>(), &entry.dtype);
        CXR_CHECK(dtype_problem.empty(), context, ": ", dtype_problem);

        const Json& shape = value["shape"];
        CXR_CHECK(shape.is_array(), context, ": \"shape\" must be an array, got ", shape.dump());
        uint64_t numel = 1;
        bool overflow = false;
        for (const Json& d : shape) {
            const uint64_t dim = json_to_u64(d, (uint64_t)std::numeric_limits<int64_t>::max(), context, "dimension");
            entry.shape.push_back((int64_t)dim);
            if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim) overflow = true;
            numel *= dim;
        }

        const Json& offsets = value["data_offsets"];
        CXR_CHECK(offsets.is_array() && offsets.size() == 2, context,
                  ": \"data_offsets\" must be an array [begin, end], got ", offsets.dump());
        entry.begin = json_to_u64(offsets[0], std::numeric_limits<uint64_t>::max(), context, "data_offsets begin");
        entry.end = json_to_u64(offsets[1], std::numeric_limits<uint64_t>::max(), context, "data_offsets end");
        CXR_CHECK(entry.begin <= entry.end, context, ": data_offsets begin ", entry.begin, " > end ", entry.end);
        CXR_CHECK(entry.end <= buffer_size, context, ": data_offsets end ", entry.end,
                  " is beyond the byte buffer of ", buffer_size, " bytes (truncated file?)");

        const uint64_t esize = dtype_size(entry.dtype);
        CXR_CHECK(!overflow && numel <= std::numeric_limits<uint64_t>::max() / esize, context,
                  ": the shape's element count overflows");
        CXR_CHECK(entry.end - entry.begin == numel * esize, context, ": size mismatch: data_offsets span ",
                  entry.end - entry.begin, " bytes but shape and dtype ", dtype.get<std::string>(), " need ",
                  numel * esize, " bytes");
        info.entries.push_back(std::move(entry));
    }

    // The tensors must tile the byte buffer exactly.
    uint64_t expected = 0;
    const EntryInfo* previous = nullptr;
    const std::vector<EntryInfo> sorted = sorted_by_offsets(info.entries);
    for (const EntryInfo& e : sorted) {
        CXR_CHECK(e.begin >= expected, tensor_where(source, e.name), ": data_offsets [", e.begin, ", ", e.end,
                  ") overlap tensor '", previous ? previous->name : std::string(), "' which ends at ", expected);
        CXR_CHECK(e.begin == expected, tensor_where(source, e.name), ": gap in the byte buffer: bytes [", expected,
                  ", ", e.begin, ") belong to no tensor");
        expected = e.end;
        previous = &e;
    }
    CXR_CHECK(expected == buffer_size, file, ": the byte buffer has ", buffer_size, " bytes but the tensors cover ",
              expected, " (trailing bytes belong to no tensor)");
    return info;
}

// Header JSON for `file` with its data laid out in sorted-name order, padded to make 8 + N a multiple of 8.
std::string build_header(const SafetensorsFile& file) {
    OrderedJson root = OrderedJson::object();
    if (!file.metadata.empty()) {
        OrderedJson meta = OrderedJson::object();
        for (const auto& [key, value] : file.metadata) meta[key] = value;
        root[kMetadataKey] = std::move(meta);
    }
    uint64_t offset = 0;
    for (const auto& [name, t] : file.tensors) {
        CXR_CHECK(name != kMetadataKey, "serialize_safetensors: a tensor may not be named \"__metadata__\"");
        uint64_t numel = 1;
        for (int64_t d : t.shape) {
            CXR_CHECK(d >= 0, "serialize_safetensors: tensor '", name, "' has a negative dimension ", d);
            CXR_CHECK(d == 0 || numel <= std::numeric_limits<uint64_t>::max() / 8 / (uint64_t)d,
                      "serialize_safetensors: tensor '", name, "': the element count overflows");
            numel *= (uint64_t)d;
        }
        const uint64_t nbytes = numel * dtype_size(t.dtype);
        CXR_CHECK(t.data.size() == nbytes, "serialize_safetensors: tensor '", name, "' has ", t.data.size(),
                  " data bytes but its shape and dtype need ", nbytes);
        OrderedJson entry = OrderedJson::object();
        entry["dtype"] = safetensors_dtype_name(t.dtype);
        entry["shape"] = t.shape;
        entry["data_offsets"] = {offset, offset + nbytes};
        root[name] = std::move(entry);
        offset += nbytes;
    }
    std::string header;
    try {
        header = root.dump();
    } catch (const OrderedJson::exception& e) {
        CXR_FAIL("serialize_safetensors: cannot encode the header (names and metadata must be UTF-8): ", e.what());
    }
    header.append((8 - header.size() % 8) % 8, ' ');
    return header;
}

std::string errno_text() { return std::strerror(errno); }

// Reads exactly n bytes at position pos; throws on a short read.
void pread_exact(int fd, uint8_t* dst, uint64_t n, uint64_t pos, const std::string& path) {
    while (n > 0) {
        const size_t chunk = (size_t)std::min<uint64_t>(n, 1u << 30);
        const ssize_t got = ::pread(fd, dst, chunk, (off_t)pos);
        if (got < 0 && errno == EINTR) continue;
        CXR_CHECK(got > 0, where(path), ": read failed at byte ", pos, ": ",
                  got == 0 ? std::string("unexpected end of file") : errno_text());
        dst += got;
        pos += (uint64_t)got;
        n -= (uint64_t)got;
    }
}

void write_exact(int fd, const uint8_t* src, size_t n, const std::string& tmp) {
    while (n > 0) {
        const size_t chunk = std::min<size_t>(n, (size_t)1 << 30);
        const ssize_t put = ::write(fd, src, chunk);
        if (put < 0 && errno == EINTR) continue;
        CXR_CHECK(put > 0, "write_safetensors: writing '", tmp, "' failed: ", errno_text());
        src += put;
        n -= (size_t)put;
    }
}

// Closes fd on scope exit unless released.
struct FdGuard {
    int fd;
    ~FdGuard() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

const char* safetensors_dtype_name(DType dtype) {
    switch (dtype) {
        case DType::f32: return "F32";
        case DType::f64: return "F64";
        case DType::f16: return "F16";
        case DType::bf16: return "BF16";
        case DType::i32: return "I32";
        case DType::i64: return "I64";
        case DType::u8: return "U8";
        case DType::boolean: return "BOOL";
    }
    CXR_FAIL("safetensors_dtype_name: bad dtype");
}

DType safetensors_dtype_from_name(const std::string& name) {
    DType dtype;
    const std::string problem = lookup_dtype(name, &dtype);
    CXR_CHECK(problem.empty(), problem);
    return dtype;
}

SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t n, const std::string& source_name) {
    const std::string file = where(source_name);
    CXR_CHECK(n >= 8, file, ": only ", n, " bytes, shorter than the 8-byte header length");
    const uint64_t header_len = read_u64_le(bytes);
    CXR_CHECK(header_len <= kSafetensorsMaxHeaderBytes, file, ": header length ", header_len,
              " exceeds the limit of ", kSafetensorsMaxHeaderBytes, " bytes (corrupt header length?)");
    CXR_CHECK(header_len <= n - 8, file, ": header length ", header_len, " exceeds the ", n - 8,
              " bytes that follow it (truncated file or corrupt header length?)");
    const uint64_t buffer_size = n - 8 - header_len;
    HeaderInfo info = parse_header(bytes + 8, header_len, buffer_size, source_name);

    const uint8_t* buffer = bytes + 8 + header_len;
    SafetensorsFile out;
    out.metadata = std::move(info.metadata);
    for (EntryInfo& e : info.entries) {
        SafetensorsTensor& t = out.tensors[e.name];
        t.dtype = e.dtype;
        t.shape = std::move(e.shape);
        t.data.assign(buffer + e.begin, buffer + e.end);
    }
    return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    CXR_CHECK(fd >= 0, where(path), ": cannot open: ", errno_text());
    FdGuard guard{fd};
    struct stat st;
    CXR_CHECK(::fstat(fd, &st) == 0, where(path), ": cannot stat: ", errno_text());
    CXR_CHECK(S_ISREG(st.st_mode), where(path), ": not a regular file");
    const uint64_t file_size = (uint64_t)st.st_size;

    CXR_CHECK(file_size >= 8, where(path), ": only ", file_size, " bytes, shorter than the 8-byte header length");
    uint8_t len_bytes[8];
    pread_exact(fd, len_bytes, 8, 0, path);
    const uint64_t header_len = read_u64_le(len_bytes);
    CXR_CHECK(header_len <= kSafetensorsMaxHeaderBytes, where(path), ": header length ", header_len,
              " exceeds the limit of ", kSafetensorsMaxHeaderBytes, " bytes (corrupt header length?)");
    CXR_CHECK(header_len <= file_size - 8, where(path), ": header length ", header_len, " exceeds the ",
              file_size - 8, " bytes that follow it (truncated file or corrupt header length?)");
    std::vector<uint8_t> header(header_len);
    pread_exact(fd, header.data(), header_len, 8, path);
    const uint64_t data_start = 8 + header_len;
    HeaderInfo info = parse_header(header.data(), header_len, file_size - data_start, path);

    SafetensorsFile out;
    out.metadata = std::move(info.metadata);
    for (EntryInfo& e : info.entries) {
        SafetensorsTensor& t = out.tensors[e.name];
        t.dtype = e.dtype;
        t.shape = std::move(e.shape);
        t.data.resize(e.end - e.begin);
        pread_exact(fd, t.data.data(), e.end - e.begin, data_start + e.begin, path);
    }
    return out;
}

std::vector<uint8_t> serialize_safetensors(const SafetensorsFile& file) {
    const std::string header = build_header(file);
    size_t total = 8 + header.size();
    for (const auto& kv : file.tensors) total += kv.second.data.size();
    std::vector<uint8_t> out;
    out.reserve(total);
    append_u64_le(out, header.size());
    out.insert(out.end(), header.begin(), header.end());
    for (const auto& kv : file.tensors) out.insert(out.end(), kv.second.data.begin(), kv.second.data.end());
    return out;
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
    const std::string header = build_header(file);  // validates before anything touches the disk
    const std::string tmp = path + ".tmp-" + std::to_string((long long)::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CXR_CHECK(fd >= 0, "write_safetensors: cannot create '", tmp, "': ", errno_text());
    FdGuard guard{fd};
    try {
        std::vector<uint8_t> prefix;
        append_u64_le(prefix, header.size());
        prefix.insert(prefix.end(), header.begin(), header.end());
        write_exact(fd, prefix.data(), prefix.size(), tmp);
        for (const auto& kv : file.tensors) write_exact(fd, kv.second.data.data(), kv.second.data.size(), tmp);
        CXR_CHECK(::fsync(fd) == 0, "write_safetensors: fsync of '", tmp, "' failed: ", errno_text());
        guard.fd = -1;
        CXR_CHECK(::close(fd) == 0, "write_safetensors: closing '", tmp, "' failed: ", errno_text());
        CXR_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, "write_safetensors: renaming '", tmp, "' to '", path,
                  "' failed: ", errno_text());
    } catch (...) {
        if (guard.fd >= 0) {
            ::close(guard.fd);
            guard.fd = -1;
        }
        ::unlink(tmp.c_str());
        throw;
    }
    // Make the rename durable (best effort: some file systems refuse fsync on directories).
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace cxr::tensor
