#include "samples.h"

#include <stdexcept>

#include "temp_dir.h"

#ifndef MAILHOOK_TESTDATA_DIR
#error "MAILHOOK_TESTDATA_DIR must be defined"
#endif

namespace mailhook::testsupport {

std::string SamplePath(const std::string& name) { return std::string(MAILHOOK_TESTDATA_DIR) + "/" + name; }

std::string SampleMessage(const std::string& name) {
  std::string data = ReadFile(SamplePath(name));
  if (data.empty()) throw std::runtime_error("missing sample message " + SamplePath(name));
  return data;
}

}  // namespace mailhook::testsupport
