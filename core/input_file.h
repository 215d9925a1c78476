#pragma once
// Files the tool reads (a model, a channel config, a text) are checked on the
// open descriptor before a byte is read: a FIFO or a device named by mistake
// would otherwise block forever or never end (/dev/zero), and a directory
// reads as empty.
#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "core/file_descriptor.h"

namespace dso {

struct InputFile {
  FileDescriptor fd;
  struct stat st {};
};

// Opens `path` read-only, without waiting on a FIFO's writer, and refuses
// anything but a regular file. Failures are dso::Error "<refusal>: <reason>",
// e.g. "cannot read channel config x.json: it is a FIFO, not a regular file".
InputFile open_regular_file(const std::string& path, const std::string& refusal);

// The whole file, refused before reading where it holds more than max_bytes;
// `what` names the kind of file in that refusal ("a channel config").
std::string read_regular_file(const std::string& path, const std::string& refusal, std::int64_t max_bytes,
                              const std::string& what);

// "a directory", "a FIFO", "a character device", ...: what a non-regular file is, for messages.
const char* file_type_name(mode_t mode);

}  // namespace dso
