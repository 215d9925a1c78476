#pragma once
// Every file the tool writes goes through OutputFile, so that a user's file is
// never destroyed or left half-written:
// - it is checked when made, before any work: its folder exists and may be
//   written, it is not a directory, and it is not the same file (device and
//   inode) as any input of the run or as another output;
// - it is written to a temporary file beside the target, and renamed over it
//   only when complete (commit), so a failure or a full disk leaves the
//   previous file as it was;
// - every write, sync, close and rename is checked.
// A target that exists and is not a regular file (/dev/null, /dev/full, a
// terminal) is written directly, since nothing can be renamed onto it.
//
// JSON lines are records appended one whole line at a time and each written
// out at once, never rewriting what came before. The temporary file is
// renamed over the target with the first record, so that the old file is
// kept by a run refused before it has results, and a run that stops or is
// killed later leaves the records it made in the target. A record that does
// not fit on the disk is taken back out, so the file never ends in a cut line.
#include <sys/types.h>

#include <span>
#include <string>
#include <string_view>

#include "core/file_descriptor.h"

namespace dso {

class OutputFile {
 public:
  enum class Kind { document, json_lines };

  // `what` names the file in messages ("the --json file"); `inputs` are the
  // run's input paths (those that do not exist, such as a built-in shape's
  // name, are skipped).
  OutputFile(std::string path, std::string what, Kind kind, std::span<const std::string> inputs = {});
  OutputFile(OutputFile&&) = delete;
  OutputFile& operator=(OutputFile&&) = delete;
  ~OutputFile();

  const std::string& path() const { return path_; }

  // Documents: appended to what is written so far.
  void write(std::string_view text);
  // JSON lines: one record, without its newline, written whole or not at all.
  void append_line(std::string_view record);
  // Complete: synced, closed and (where not yet) renamed into place. Once only.
  void commit();

  // Refuses two outputs of one run that name the same file (the last would win).
  static void check_apart(const OutputFile& a, const OutputFile& b);

 private:
  void write_all(std::string_view bytes);
  void place();  // the temporary file renamed over the target
  std::string refusal() const;

  std::string path_;
  std::string what_;
  Kind kind_;
  std::string rename_to_;  // the target, through any symbolic link
  std::string temp_;      // while the temporary file is not yet in place
  bool regular_ = false;  // false where the target (a device) is written directly
  FileDescriptor fd_;
  off_t written_ = 0;
  dev_t dir_dev_ = 0;  // where the target will be: its folder and name
  ino_t dir_ino_ = 0;
  std::string name_;
};

// Standard output, flushed and checked: a full disk or a closed pipe behind
// stdout is an error (dso::Error), not lost output.
void flush_stdout();

}  // namespace dso
