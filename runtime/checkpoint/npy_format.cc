#include "runtime/checkpoint/npy_format.h"

#include <cctype>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

namespace mrtrain::runtime {
namespace {

constexpr size_t kV1Prefix = kNpyMagicSize + 2 + 2;  // magic, version, u16 header_len
constexpr size_t kV2Prefix = kNpyMagicSize + 2 + 4;  // magic, version, u32 header_len
constexpr uint64_t kMaxElements = std::numeric_limits<uint64_t>::max() / sizeof(float);

// A cursor over the dict of an .npy header: the Python literal numpy writes, nothing more
// general (no nesting, no escapes in strings).
class DictParser {
 public:
  explicit DictParser(std::string_view text) : text_(text) {}

  bool Consume(char c) {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  bool QuotedString(std::string* out) {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return false;
    const size_t end = text_.find(text_[pos_], pos_ + 1);
    if (end == std::string_view::npos) return false;
    *out = std::string(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return true;
  }

  bool Word(std::string* out) {
    SkipSpace();
    const size_t start = pos_;
    while (pos_ < text_.size() && std::isalpha(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    *out = std::string(text_.substr(start, pos_ - start));
    return pos_ > start;
  }

  // A non-negative integer of at most 18 digits (so it cannot overflow), with Python 2's
  // optional 'L'.
  bool Int(int64_t* out) {
    SkipSpace();
    const size_t start = pos_;
    *out = 0;
    while (pos_ < text_.size() && pos_ - start < 18 &&
           std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      *out = *out * 10 + (text_[pos_++] - '0');
    }
    if (pos_ == start) return false;
    if (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) return false;
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;
    return true;
  }

  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

bool Fail(std::string* error, std::string message) {
  *error = std::move(message);
  return false;
}

// "(2, 3)", "(7,)" or "()".
bool ParseShape(DictParser* p, std::vector<int64_t>* shape) {
  if (!p->Consume('(')) return false;
  while (!p->Consume(')')) {
    int64_t d = 0;
    if (!p->Int(&d)) return false;
    shape->push_back(d);
    if (!p->Consume(',')) return p->Consume(')');
  }
  return true;
}

// Fills `header` from the dict; false with `error` set on anything but a '<f4' C-order array.
bool ParseDict(std::string_view text, NpyHeader* header, std::string* error) {
  DictParser p(text);
  bool have_descr = false, have_order = false, have_shape = false;
  *error = "malformed header dict";
  if (!p.Consume('{')) return false;
  while (!p.Consume('}')) {
    std::string key, value;
    if (!p.QuotedString(&key) || !p.Consume(':')) return false;
    if (key == "descr") {
      if (!p.QuotedString(&value)) return false;
      if (value != "<f4") return Fail(error, "dtype '" + value + "' is not '<f4' (float32)");
      have_descr = true;
    } else if (key == "fortran_order") {
      if (!p.Word(&value)) return false;
      if (value != "False") return Fail(error, "Fortran-order arrays are not supported");
      have_order = true;
    } else if (key == "shape") {
      if (!ParseShape(&p, &header->shape)) return false;
      have_shape = true;
    } else {
      return Fail(error, "unknown header key '" + key + "'");
    }
    if (!p.Consume(',')) {
      if (!p.Consume('}')) return false;
      break;
    }
  }
  if (!p.AtEnd()) return false;
  if (!have_descr || !have_order || !have_shape) {
    return Fail(error, "header lacks descr, fortran_order or shape");
  }
  return true;
}

uint64_t ReadLittleEndian(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Result<std::string> NpyHeaderF32(const std::vector<int64_t>& shape) {
  return NpyHeaderOf("<f4", shape);
}

Result<std::string> NpyHeaderOf(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1) dict += ",";  // Python's one-element tuple
    if (i + 1 < shape.size()) dict += ", ";
  }
  dict += "), }";
  // Spaces, then '\n', up to the next multiple of the alignment.
  const size_t unpadded = kV1Prefix + dict.size() + 1;
  const size_t padded = (unpadded + kNpyAlignment - 1) / kNpyAlignment * kNpyAlignment;
  dict.append(padded - unpadded, ' ');
  dict += '\n';
  if (dict.size() > std::numeric_limits<uint16_t>::max()) {
    return InvalidArgumentError("an .npy 1.0 header cannot hold a shape of rank " +
                                std::to_string(shape.size()));
  }
  std::string header(kNpyMagic, kNpyMagicSize);
  header += '\x01';  // version 1.0
  header += '\x00';
  header += static_cast<char>(dict.size() & 0xff);
  header += static_cast<char>(dict.size() >> 8);
  return header + dict;
}

Result<NpyHeader> ParseNpyHeaderF32(const uint8_t* bytes, size_t n, const std::string& name) {
  auto fail = [&name](const std::string& what) { return CorruptionError(name + ": " + what); };
  if (n < kV1Prefix) return fail("truncated .npy header");
  if (std::memcmp(bytes, kNpyMagic, kNpyMagicSize) != 0) return fail("not an .npy array");
  const int major = bytes[kNpyMagicSize], minor = bytes[kNpyMagicSize + 1];
  if (major < 1 || major > 3 || minor != 0) {
    return fail("unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
  }
  const size_t prefix = major == 1 ? kV1Prefix : kV2Prefix;
  if (n < prefix) return fail("truncated .npy header");
  const uint64_t dict_size =
      ReadLittleEndian(bytes + kNpyMagicSize + 2, prefix == kV1Prefix ? 2 : 4);
  if (dict_size > n - prefix) {
    return fail("the .npy header claims " + std::to_string(dict_size) + " bytes but only " +
                std::to_string(n - prefix) + " follow");
  }
  NpyHeader header;
  std::string error;
  const std::string_view dict(reinterpret_cast<const char*>(bytes + prefix), dict_size);
  if (!ParseDict(dict, &header, &error)) return fail(error);
  header.num_elements = 1;
  for (int64_t d : header.shape) {
    if (d != 0 && header.num_elements > kMaxElements / static_cast<uint64_t>(d)) {
      return fail("the shape's size overflows");
    }
    header.num_elements *= static_cast<uint64_t>(d);
  }
  header.header_size = prefix + dict_size;
  return header;
}

}  // namespace mrtrain::runtime
