#include "support/gguf_writer.h"

#include <stdexcept>

namespace dso::test {
namespace {

void put_string(std::vector<std::byte>& out, const std::string& s) {
  put<std::uint64_t>(out, s.size());
  const std::size_t at = out.size();
  out.resize(at + s.size());
  std::memcpy(out.data() + at, s.data(), s.size());
}

}  // namespace

void GgufWriter::set_alignment(std::uint32_t alignment) {
  alignment_ = alignment;
  scalar<std::uint32_t>("general.alignment", alignment);
}

void GgufWriter::string(const std::string& key, const std::string& value) {
  kvs_.push_back({key, GgufType::string, GgufType::u8, 1, {}, {value}});
}

void GgufWriter::strings(const std::string& key, const std::vector<std::string>& values) {
  kvs_.push_back({key, GgufType::array, GgufType::string, values.size(), {}, values});
}

void GgufWriter::tensor(const std::string& name, std::vector<std::int64_t> dims, TensorType type,
                        std::vector<std::byte> data) {
  tensors_.push_back({name, std::move(dims), type, std::move(data)});
}

std::vector<std::byte> GgufWriter::build() {
  at_.clear();
  std::vector<std::byte> out;
  const auto mark = [&](const std::string& field) { at_[field] = out.size(); };
  mark("magic");
  for (char c : std::string("GGUF")) out.push_back(std::byte(c));
  mark("version");
  put<std::uint32_t>(out, version_);
  mark("tensor_count");
  put<std::uint64_t>(out, tensors_.size());
  mark("kv_count");
  put<std::uint64_t>(out, kvs_.size());

  for (std::size_t i = 0; i < kvs_.size(); ++i) {
    const KeyValue& kv = kvs_[i];
    const std::string p = "kv" + std::to_string(i) + ".";
    mark(p + "key");
    put_string(out, kv.key);
    mark(p + "type");
    put<std::uint32_t>(out, std::uint32_t(kv.type));
    if (kv.type == GgufType::array) {
      mark(p + "element_type");
      put<std::uint32_t>(out, std::uint32_t(kv.element_type));
      mark(p + "count");
      put<std::uint64_t>(out, kv.count);
      mark(p + "first");
    } else {
      mark(p + "value");
    }
    for (const std::string& s : kv.strings) put_string(out, s);
    out.insert(out.end(), kv.payload.begin(), kv.payload.end());
  }

  std::uint64_t offset = 0;
  std::vector<std::uint64_t> offsets;
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    const std::string p = "tensor" + std::to_string(i) + ".";
    mark(p + "name");
    put_string(out, t.name);
    mark(p + "n_dims");
    put<std::uint32_t>(out, std::uint32_t(t.dims.size()));
    for (std::size_t d = 0; d < t.dims.size(); ++d) {
      mark(p + "dim" + std::to_string(d));
      put<std::uint64_t>(out, std::uint64_t(t.dims[d]));
    }
    mark(p + "type");
    put<std::uint32_t>(out, std::uint32_t(t.type));
    mark(p + "offset");
    put<std::uint64_t>(out, offset);
    offsets.push_back(offset);
    offset = (offset + t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }

  const std::size_t data = (out.size() + alignment_ - 1) / alignment_ * alignment_;
  at_["data"] = data;
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const std::size_t begin = data + offsets[i];
    at_["tensor" + std::to_string(i) + ".data"] = begin;
    out.resize(begin, std::byte{0});
    out.insert(out.end(), tensors_[i].data.begin(), tensors_[i].data.end());
  }
  return out;
}

std::size_t GgufWriter::at(const std::string& field) const {
  const auto it = at_.find(field);
  if (it == at_.end()) throw std::logic_error("GgufWriter wrote no field '" + field + "'");
  return it->second;
}

}  // namespace dso::test
