#include <gtest/gtest.h>

#include "core/dtype.h"

TEST(DType, HalfRoundTripsSmallIntegers) {
  for (int i = -2048; i <= 2048; ++i) EXPECT_EQ(dso::to_float(dso::from_float<dso::Half>(float(i))), float(i));
}
