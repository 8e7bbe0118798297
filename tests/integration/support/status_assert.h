#pragma once
/// GoogleTest helpers for util::Result / util::Status: fail with the Error's
/// message (which names the cause and the fix) instead of a bare "false".

#include <gtest/gtest.h>

#define MH_ASSERT_OK(expr)                                         \
  do {                                                             \
    const auto& mh_status_ = (expr);                               \
    ASSERT_TRUE(mh_status_.ok()) << mh_status_.error().ToString(); \
  } while (0)

#define MH_EXPECT_OK(expr)                                         \
  do {                                                             \
    const auto& mh_status_ = (expr);                               \
    EXPECT_TRUE(mh_status_.ok()) << mh_status_.error().ToString(); \
  } while (0)

#define MH_CONCAT_INNER_(a, b) a##b
#define MH_CONCAT_(a, b) MH_CONCAT_INNER_(a, b)

/// MH_ASSERT_OK_AND_ASSIGN(auto uid, client.Append(...)); declares `uid`.
#define MH_ASSERT_OK_AND_ASSIGN(lhs, expr) MH_ASSERT_OK_AND_ASSIGN_IMPL_(MH_CONCAT_(mh_result_, __LINE__), lhs, expr)
#define MH_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  ASSERT_TRUE(tmp.ok()) << tmp.error().ToString();    \
  lhs = std::move(tmp).value()
