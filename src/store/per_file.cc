#include "store/per_file.h"

#include <sys/stat.h>

namespace mailhook::store {

std::string FileIdentity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "path:" + path;
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

}  // namespace mailhook::store
