#pragma once
// For tests of refusals: what a dso::Error says.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"

namespace dso::test {

// The message of the dso::Error `f` throws, or a failure if it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no dso::Error was thrown";
  return {};
}

}  // namespace dso::test
