#pragma once
// A whole file mapped read-only into memory. Owns the descriptor and the
// mapping; both are released when the object goes.
#include <cstddef>
#include <span>
#include <string>

namespace dso {

class MappedFile {
 public:
  // Throws dso::Error naming the path and the system's reason when the file
  // cannot be opened or mapped, or is empty.
  explicit MappedFile(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(data_), size_}; }
  const std::string& path() const { return path_; }

 private:
  void release() noexcept;

  std::string path_;
  int fd_ = -1;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace dso
