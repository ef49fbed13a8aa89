// Tests of tensor/io/safetensors.h: round trips of every dtype (scalars, zero-size tensors, metadata), a
// byte-exact comparison with a file assembled by hand from the format description, files laid out the way
// other writers lay them out, each header/buffer corruption producing a cxr::Error that names the problem,
// and the atomic writer.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "tensor/error.h"
#include "tensor/io/safetensors.h"

using namespace cxr::tensor;

namespace {

// Little-endian u64 header length, the header text, then the byte buffer.
std::vector<uint8_t> assemble(const std::string& header, const std::vector<uint8_t>& buffer) {
    std::vector<uint8_t> out;
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.push_back((uint8_t)(n >> (8 * i)));
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), buffer.begin(), buffer.end());
    return out;
}

// The message of the cxr::Error that parsing `bytes` throws, or "" when it does not throw one.
std::string parse_error(const std::vector<uint8_t>& bytes, const std::string& source = "bad.safetensors") {
    try {
        parse_safetensors(bytes.data(), bytes.size(), source);
    } catch (const cxr::Error& e) {
        return e.what();
    }
    return "";
}

SafetensorsTensor make_tensor(DType dtype, std::vector<int64_t> shape, uint8_t first_byte) {
    SafetensorsTensor t;
    t.dtype = dtype;
    t.shape = std::move(shape);
    size_t numel = 1;
    for (int64_t d : t.shape) numel *= (size_t)d;
    t.data.resize(numel * dtype_size(dtype));
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = (uint8_t)(first_byte + 31 * i);
    return t;
}

void check_same(const SafetensorsFile& a, const SafetensorsFile& b) {
    CHECK(a.metadata == b.metadata);
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (const auto& [name, t] : a.tensors) {
        INFO("tensor " << name);
        REQUIRE(b.tensors.count(name) == 1);
        const SafetensorsTensor& u = b.tensors.at(name);
        CHECK(t.dtype == u.dtype);
        CHECK(t.shape == u.shape);
        CHECK(t.data == u.data);
    }
}

// A fresh temporary directory, removed (with its files) at scope exit.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/cxr_safetensors_test_XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        for (const std::string& f : files()) std::remove((path + "/" + f).c_str());
        rmdir(path.c_str());
    }
    std::vector<std::string> files() const {
        std::vector<std::string> names;
        if (DIR* d = opendir(path.c_str())) {
            while (dirent* e = readdir(d))
                if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
            closedir(d);
        }
        return names;
    }
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
}

// The hand-made file of the byte-exact test: metadata {"format": "pt"}, "a" = F32 [1.0, -2.0], "flag" = BOOL
// scalar true. The header text is 141 bytes, padded with 3 spaces to 144 = 0x90 so that 8 + 144 is a multiple of 8.
std::vector<uint8_t> hand_made_file() {
    const std::string header =
        R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("flag":{"dtype":"BOOL","shape":[],"data_offsets":[8,9]}})"
        "   ";
    std::vector<uint8_t> bytes = {0x90, 0, 0, 0, 0, 0, 0, 0};
    bytes.insert(bytes.end(), header.begin(), header.end());
    const uint8_t data[] = {0x00, 0x00, 0x80, 0x3F,   // 1.0f
                            0x00, 0x00, 0x00, 0xC0,   // -2.0f
                            0x01};                    // true
    bytes.insert(bytes.end(), std::begin(data), std::end(data));
    return bytes;
}

}  // namespace

TEST_CASE("safetensors dtype names", "[cpu]") {
    const char* names[] = {"F32", "F64", "F16", "BF16", "I32", "I64", "U8", "BOOL"};
    for (const char* n : names) CHECK(std::string(safetensors_dtype_name(safetensors_dtype_from_name(n))) == n);
    CHECK(safetensors_dtype_from_name("BOOL") == DType::boolean);
    CHECK(safetensors_dtype_from_name("BF16") == DType::bf16);
    CHECK_THROWS_WITH(safetensors_dtype_from_name("F8_E4M3"), Catch::Contains("does not support"));
    CHECK_THROWS_WITH(safetensors_dtype_from_name("f32"), Catch::Contains("unknown dtype"));
}

TEST_CASE("safetensors round trip of every dtype, scalars, empty tensors and metadata", "[cpu]") {
    SafetensorsFile file;
    file.metadata = {{"format", "pt"}, {"note", "h\xC3\xA9llo \"quoted\"\n"}};
    file.tensors["f32"] = make_tensor(DType::f32, {2, 3}, 1);
    file.tensors["f64"] = make_tensor(DType::f64, {5}, 2);
    file.tensors["f16"] = make_tensor(DType::f16, {3, 1, 2}, 3);
    file.tensors["bf16"] = make_tensor(DType::bf16, {7}, 4);
    file.tensors["i32"] = make_tensor(DType::i32, {2, 2}, 5);
    file.tensors["i64"] = make_tensor(DType::i64, {3}, 6);
    file.tensors["u8"] = make_tensor(DType::u8, {11}, 7);
    file.tensors["bool"] = make_tensor(DType::boolean, {4}, 0);
    for (auto& b : file.tensors["bool"].data) b &= 1;
    file.tensors["scalar_f32"] = make_tensor(DType::f32, {}, 8);
    file.tensors["scalar_i64"] = make_tensor(DType::i64, {}, 9);
    file.tensors["empty"] = make_tensor(DType::f32, {0}, 0);
    file.tensors["empty_2d"] = make_tensor(DType::f16, {3, 0}, 0);
    file.tensors["down_blocks.0.attentions.0.proj_in.weight"] = make_tensor(DType::f32, {4, 4, 1, 1}, 10);

    const std::vector<uint8_t> bytes = serialize_safetensors(file);
    const uint64_t header_len = bytes[0] | (uint64_t)bytes[1] << 8;
    CHECK(header_len % 8 == 0);
    CHECK(bytes[8] == '{');
    check_same(file, parse_safetensors(bytes.data(), bytes.size(), "memory"));

    TempDir dir;
    const std::string path = dir.path + "/model.safetensors";
    write_safetensors(path, file);
    check_same(file, read_safetensors(path));
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});  // no temporary left behind
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(on_disk == bytes);

    SECTION("a file with no tensors and no metadata") {
        SafetensorsFile empty;
        const std::vector<uint8_t> b = serialize_safetensors(empty);
        CHECK(std::string(b.begin() + 8, b.end()) == "{}      ");
        check_same(empty, parse_safetensors(b.data(), b.size(), "empty"));
    }
}

TEST_CASE("safetensors matches a file assembled by hand from the format description", "[cpu]") {
    const std::vector<uint8_t> hand = hand_made_file();
    const SafetensorsFile parsed = parse_safetensors(hand.data(), hand.size(), "hand");
    CHECK(parsed.metadata == std::map<std::string, std::string>{{"format", "pt"}});
    REQUIRE(parsed.tensors.size() == 2);
    const SafetensorsTensor& a = parsed.tensors.at("a");
    CHECK(a.dtype == DType::f32);
    CHECK(a.shape == std::vector<int64_t>{2});
    float values[2];
    std::memcpy(values, a.data.data(), 8);
    CHECK(values[0] == 1.0f);
    CHECK(values[1] == -2.0f);
    const SafetensorsTensor& flag = parsed.tensors.at("flag");
    CHECK(flag.dtype == DType::boolean);
    CHECK(flag.shape.empty());
    CHECK(flag.data == std::vector<uint8_t>{1});

    SafetensorsFile built;
    built.metadata["format"] = "pt";
    built.tensors["a"] = {DType::f32, {2}, {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0}};
    built.tensors["flag"] = {DType::boolean, {}, {0x01}};
    CHECK(serialize_safetensors(built) == hand);
}

TEST_CASE("safetensors reads layouts other writers produce", "[cpu]") {
    // data in an order different from the key order, fields reordered, an unknown extra field, null metadata,
    // no padding, a zero-size tensor sharing its offset with another, whitespace in the JSON
    const std::string header =
        "{ \"z\": {\"data_offsets\": [0, 4], \"shape\": [1], \"dtype\": \"I32\", \"extra\": 1},\n"
        "  \"e\": {\"dtype\": \"F64\", \"shape\": [0, 2], \"data_offsets\": [4, 4]},\n"
        "  \"b\": {\"shape\": [2], \"dtype\": \"U8\", \"data_offsets\": [4, 6]},\n"
        "  \"__metadata__\": null }";
    const std::vector<uint8_t> bytes = assemble(header, {1, 0, 0, 0, 9, 8});
    const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), "other");
    CHECK(f.metadata.empty());
    CHECK(f.tensors.at("z").data == std::vector<uint8_t>{1, 0, 0, 0});
    CHECK(f.tensors.at("b").data == std::vector<uint8_t>{9, 8});
    CHECK(f.tensors.at("e").shape == std::vector<int64_t>{0, 2});
    CHECK(f.tensors.at("e").data.empty());
}

TEST_CASE("safetensors corruptions give a cxr::Error naming the file, the tensor and the problem", "[cpu]") {
    const std::vector<uint8_t> good = hand_made_file();
    REQUIRE(parse_error(good).empty());
    const std::string ab_header_prefix = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)";

    SECTION("shorter than 8 bytes") {
        const std::string msg = parse_error({0x10, 0, 0});
        CHECK_THAT(msg, Catch::Contains("shorter than the 8-byte header length"));
        CHECK_THAT(msg, Catch::Contains("bad.safetensors"));
    }
    SECTION("header length over the cap") {
        std::vector<uint8_t> b = good;
        b[4] = 0x01;  // 2^32 + 0x90
        CHECK_THAT(parse_error(b), Catch::Contains("exceeds the limit of 100000000 bytes"));
    }
    SECTION("header length beyond the file") {
        std::vector<uint8_t> b = good;
        b[1] = 0x01;  // 0x190 = 400 > 153 bytes
        CHECK_THAT(parse_error(b), Catch::Contains("header length 400 exceeds the 153 bytes"));
    }
    SECTION("truncated file") {
        std::vector<uint8_t> b = good;
        b.pop_back();
        const std::string msg = parse_error(b);
        CHECK_THAT(msg, Catch::Contains("tensor 'flag'"));
        CHECK_THAT(msg, Catch::Contains("beyond the byte buffer of 8 bytes"));
        b.resize(100);  // cut inside the header
        CHECK_THAT(parse_error(b), Catch::Contains("exceeds the 92 bytes"));
    }
    SECTION("header does not start with '{'") {
        CHECK_THAT(parse_error(assemble(" {}", {})), Catch::Contains("must start with '{'"));
        CHECK_THAT(parse_error(assemble("[1, 2]", {})), Catch::Contains("must start with '{'"));
        CHECK_THAT(parse_error(assemble("", {})), Catch::Contains("must start with '{'"));
    }
    SECTION("bad JSON") {
        CHECK_THAT(parse_error(assemble(R"({"a": {"dtype": "F32",)", {})), Catch::Contains("not valid JSON"));
        CHECK_THAT(parse_error(assemble("{} x", {})), Catch::Contains("not valid JSON"));
        std::vector<uint8_t> b = good;
        b[8 + 15] = ',';  // the ':' after "__metadata__"
        CHECK_THAT(parse_error(b), Catch::Contains("not valid JSON"));
    }
    SECTION("duplicate keys") {
        const std::string h = ab_header_prefix + R"([0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
        CHECK_THAT(parse_error(assemble(h, std::vector<uint8_t>(8))), Catch::Contains("duplicate key 'a'"));
        const std::string h2 = R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
        CHECK_THAT(parse_error(assemble(h2, std::vector<uint8_t>(8))), Catch::Contains("duplicate key 'dtype'"));
    }
    SECTION("entries with missing fields or wrong types") {
        auto err = [](const std::string& h) { return parse_error(assemble(h, std::vector<uint8_t>(8))); };
        std::string msg = err(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})");
        CHECK_THAT(msg, Catch::Contains("tensor 'a'"));
        CHECK_THAT(msg, Catch::Contains("missing field \"shape\""));
        CHECK_THAT(err(R"({"a":{"dtype":"F32","shape":[2]}})"), Catch::Contains("missing field \"data_offsets\""));
        CHECK_THAT(err(R"({"a":[1,2]})"), Catch::Contains("the entry must be an object"));
        CHECK_THAT(err(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})"),
                   Catch::Contains("\"dtype\" must be a string"));
        CHECK_THAT(err(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})"),
                   Catch::Contains("\"shape\" must be an array"));
        CHECK_THAT(err(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})"),
                   Catch::Contains("dimension must be a non-negative integer"));
        CHECK_THAT(err(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})"),
                   Catch::Contains("dimension must be a non-negative integer"));
        CHECK_THAT(err(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})"),
                   Catch::Contains("\"data_offsets\" must be an array [begin, end]"));
        CHECK_THAT(err(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]}})"),
                   Catch::Contains("data_offsets begin is negative"));
        CHECK_THAT(err(R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"),
                   Catch::Contains("metadata value of 'k' must be a string"));
        CHECK_THAT(err(R"({"__metadata__":"x","a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})"),
                   Catch::Contains("\"__metadata__\" must be an object"));
    }
    SECTION("unknown and unsupported dtypes") {
        auto err = [](const std::string& dt) {
            return parse_error(
                assemble(R"({"w":{"dtype":")" + dt + R"(","shape":[8],"data_offsets":[0,8]}})", std::vector<uint8_t>(8)));
        };
        std::string msg = err("F7");
        CHECK_THAT(msg, Catch::Contains("unknown dtype 'F7'"));
        CHECK_THAT(msg, Catch::Contains("tensor 'w'"));
        CHECK_THAT(err("I8"), Catch::Contains("dtype I8 is a valid safetensors dtype but cxr does not support it"));
        CHECK_THAT(err("F8_E4M3"), Catch::Contains("does not support"));
    }
    SECTION("negative dimension") {
        const std::string h = R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})";
        const std::string msg = parse_error(assemble(h, std::vector<uint8_t>(8)));
        CHECK_THAT(msg, Catch::Contains("tensor 'a'"));
        CHECK_THAT(msg, Catch::Contains("dimension is negative (-2)"));
    }
    SECTION("begin > end") {
        CHECK_THAT(parse_error(assemble(ab_header_prefix + "[8,0]}}", std::vector<uint8_t>(8))),
                   Catch::Contains("data_offsets begin 8 > end 0"));
    }
    SECTION("size mismatch") {
        const std::string msg = parse_error(assemble(ab_header_prefix + "[0,12]}}", std::vector<uint8_t>(12)));
        CHECK_THAT(msg, Catch::Contains("tensor 'a'"));
        CHECK_THAT(msg, Catch::Contains("size mismatch: data_offsets span 12 bytes but shape and dtype F32 need 8"));
    }
    SECTION("overlapping offsets") {
        const std::string h = ab_header_prefix + R"([0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}})";
        const std::string msg = parse_error(assemble(h, std::vector<uint8_t>(10)));
        CHECK_THAT(msg, Catch::Contains("tensor 'b'"));
        CHECK_THAT(msg, Catch::Contains("overlap tensor 'a'"));
    }
    SECTION("gap between tensors and at the start") {
        const std::string h = ab_header_prefix + R"([0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[10,14]}})";
        const std::string msg = parse_error(assemble(h, std::vector<uint8_t>(14)));
        CHECK_THAT(msg, Catch::Contains("tensor 'b'"));
        CHECK_THAT(msg, Catch::Contains("gap in the byte buffer: bytes [8, 10) belong to no tensor"));
        CHECK_THAT(parse_error(assemble(ab_header_prefix + "[2,10]}}", std::vector<uint8_t>(10))),
                   Catch::Contains("gap in the byte buffer: bytes [0, 2)"));
    }
    SECTION("trailing bytes after the last tensor") {
        CHECK_THAT(parse_error(assemble(ab_header_prefix + "[0,8]}}", std::vector<uint8_t>(9))),
                   Catch::Contains("the byte buffer has 9 bytes but the tensors cover 8"));
    }
}

TEST_CASE("read_safetensors checks the file on disk", "[cpu]") {
    TempDir dir;
    CHECK_THROWS_WITH(read_safetensors(dir.path + "/missing.safetensors"), Catch::Contains("cannot open"));
    std::vector<uint8_t> b = hand_made_file();
    const std::string path = dir.path + "/cut.safetensors";
    b.resize(b.size() - 3);
    write_bytes(path, b);
    try {
        read_safetensors(path);
        FAIL("no error for a truncated file");
    } catch (const cxr::Error& e) {
        CHECK_THAT(std::string(e.what()), Catch::Contains(path));
        CHECK_THAT(std::string(e.what()), Catch::Contains("beyond the byte buffer"));
    }
    write_bytes(path, {1, 2, 3});
    CHECK_THROWS_WITH(read_safetensors(path), Catch::Contains("shorter than the 8-byte header length"));
    CHECK_THROWS_WITH(read_safetensors(dir.path), Catch::Contains("not a regular file"));
}

TEST_CASE("write_safetensors is atomic and validates before writing", "[cpu]") {
    TempDir dir;
    const std::string path = dir.path + "/w.safetensors";
    SafetensorsFile good;
    good.tensors["x"] = make_tensor(DType::f32, {3}, 1);
    write_safetensors(path, good);

    SafetensorsFile bad = good;
    bad.tensors["y"] = make_tensor(DType::f32, {3}, 1);
    bad.tensors["y"].data.pop_back();
    CHECK_THROWS_WITH(write_safetensors(path, bad), Catch::Contains("tensor 'y' has 11 data bytes"));
    SafetensorsFile reserved = good;
    reserved.tensors["__metadata__"] = make_tensor(DType::u8, {1}, 1);
    CHECK_THROWS_WITH(serialize_safetensors(reserved), Catch::Contains("__metadata__"));
    SafetensorsFile negative = good;
    negative.tensors["n"] = {DType::f32, {-1}, {}};
    CHECK_THROWS_WITH(serialize_safetensors(negative), Catch::Contains("negative dimension"));

    check_same(good, read_safetensors(path));  // the earlier file is intact
    CHECK(dir.files() == std::vector<std::string>{"w.safetensors"});

    CHECK_THROWS_WITH(write_safetensors(dir.path + "/no/such/dir/f.safetensors", good), Catch::Contains("cannot create"));
    CHECK(dir.files() == std::vector<std::string>{"w.safetensors"});
}

// ---- the Tensor layer (tensor/io/tensor_file.h) ----
#include "tensor/io/tensor_file.h"
#include "tensor/ops/elementwise.h"
#include "tensor/ops/creation.h"
#include "tensor/ops/view.h"

TEST_CASE("tensor_file: non-contiguous tensors of every dtype round-trip with metadata", "[cpu][safetensors]") {
    using namespace cxr::tensor;
    std::map<std::string, Tensor> ts;
    Tensor base = arange(0.0, 12.0, 1.0, DType::f64).reshape({3, 4});
    for (DType dt : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::u8})
        ts[std::string("t_") + dtype_name(dt)] = base.to(dt).transpose(0, 1);  // non-contiguous view
    ts["mask"] = gt(base, 5.0);
    const std::string path = "/tmp/cxr_tensor_file_test.safetensors";
    save_tensor_file(path, ts, {{"format", "pt"}});
    TensorFile back = load_tensor_file(path);
    CHECK(back.metadata.at("format") == "pt");
    REQUIRE(back.tensors.size() == ts.size());
    for (const auto& kv : ts) {
        const Tensor& b = back.tensors.at(kv.first);
        CHECK(b.dtype() == kv.second.dtype());
        CHECK(b.sizes() == kv.second.sizes());
        CHECK(b.to_vector<double>() == kv.second.to_vector<double>());
    }
}
