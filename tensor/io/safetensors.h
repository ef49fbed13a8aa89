// safetensors reader and writer at the raw level (dtype, shape, bytes per tensor; no Tensor objects).
//
// Format (huggingface/safetensors, the format of diffusers/transformers weight files):
//   bytes [0, 8)        N: little-endian u64, the length of the JSON header
//   bytes [8, 8 + N)    UTF-8 JSON object: name -> {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//                       plus an optional "__metadata__": {string: string}. May end with space padding.
//   bytes [8 + N, EOF)  the byte buffer; a tensor's bytes are buffer[begin, end), row-major, little-endian.
// dtype names: F32 F64 F16 BF16 I32 I64 U8 BOOL map to cxr DTypes (BOOL -> boolean). The other dtypes of the
// format (I8 I16 U16 U32 U64 F8_E4M3 F8_E5M2 F8_E8M0 F4 F6_E2M3 F6_E3M2 C64) are recognised and rejected with a
// message saying cxr does not support them.
//
// Reading validates (each failure throws cxr::Error naming the file and, where there is one, the tensor):
// file at least 8 bytes; N <= 100,000,000 (the reference implementation's cap) and 8 + N <= file size; the
// header starts with '{' and is a valid JSON object without duplicate keys; each entry is an object with
// "dtype" (string, known), "shape" (array of non-negative integers), "data_offsets" (two non-negative
// integers, begin <= end) — other fields of an entry are ignored, as the reference implementation does;
// end - begin == product(shape) * dtype_size; sorted by begin, the tensors tile the byte buffer exactly
// (no gaps, no overlaps, last end == buffer size); "__metadata__", if present and not null, maps strings to
// strings.
//
// Writing: compact JSON with "__metadata__" first (only when metadata is non-empty), then the tensors in
// sorted-name order, each as {"dtype":..,"shape":[..],"data_offsets":[b,e]}; data laid out contiguously in
// the same order; the header padded with spaces so that 8 + N is a multiple of 8 (as the reference writer
// does). write_safetensors writes `path + ".tmp-<pid>"`, fsyncs, closes and renames it over `path`; on any
// failure the temporary is removed, `path` is untouched and cxr::Error is thrown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace cxr::tensor {

struct SafetensorsTensor {
    DType dtype = DType::f32;
    std::vector<int64_t> shape;  // [] for a scalar
    std::vector<uint8_t> data;   // product(shape) * dtype_size(dtype) bytes, row-major, little-endian
};

struct SafetensorsFile {
    std::map<std::string, std::string> metadata;
    std::map<std::string, SafetensorsTensor> tensors;
};

// The reference implementation's limit on the JSON header length.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100000000;

// safetensors dtype name ("F32", "BOOL", ...) <-> cxr DType. The parse throws for names cxr does not support.
const char* safetensors_dtype_name(DType dtype);
DType safetensors_dtype_from_name(const std::string& name);

// Reads and validates a whole file. Tensor bytes are read straight into each tensor's buffer.
SafetensorsFile read_safetensors(const std::string& path);
// Validates and decodes an in-memory file; source_name is used in error messages.
SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t n, const std::string& source_name);
// The bytes of a file holding `file` (layout described above). Throws if a tensor's data size does not match
// its shape and dtype, a dim is negative, or a name is empty or "__metadata__".
std::vector<uint8_t> serialize_safetensors(const SafetensorsFile& file);
// Writes `file` to path atomically (temporary + fsync + rename).
void write_safetensors(const std::string& path, const SafetensorsFile& file);

}  // namespace cxr::tensor
