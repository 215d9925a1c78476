#pragma once
// The real model the project runs, SmolLM2-135M-Instruct (Q4_1 GGUF), put in
// models/ by scripts/get_model.sh. Tests that read it derive from SmolLM2File
// and skip, saying why, where the file is absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "model/gguf.h"

namespace dso::test {

inline std::string smollm2_path() { return std::string(DSO_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"; }

class SmolLM2File : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!file_ && std::filesystem::exists(smollm2_path())) file_ = std::make_unique<GgufFile>(GgufFile::open(smollm2_path()));
  }
  static void TearDownTestSuite() { file_.reset(); }

  void SetUp() override {
    if (!file_) GTEST_SKIP() << smollm2_path() << " is absent: run scripts/get_model.sh to test against the real model";
  }

  static const GgufFile& file() { return *file_; }

 private:
  static inline std::unique_ptr<GgufFile> file_;
};

}  // namespace dso::test
