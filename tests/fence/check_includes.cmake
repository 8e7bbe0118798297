cmake_minimum_required(VERSION 3.25)
# fence.includes: see CMakeLists.txt. SRC is the source tree's src/.
# Each rule: the areas that may include them (separated by ","), then a
# regex of includes. src/smtp and src/http's client send over src/imap's TLS stream.
set(rules
  "imap|#include[ \t]*[<\"]imap/bodystructure\\.h"
  "imap,smtp,http|#include[ \t]*[<\"](libetpan/|imap/tls_stream\\.h|imap/etpan_ptr\\.h)"
  "store|#include[ \t]*[<\"](sqlite3\\.h|store/statement\\.h|store/row_mapper\\.h)"
  "none|#include[ \t]*[<\"]httplib\\.h"
  "pgstore|#include[ \t]*[<\"](libpq-fe\\.h|libpq/|postgres_ext\\.h|pgstore/libpq\\.h)"
  "mime|#include[ \t]*[<\"]idn2\\.h")
file(GLOB_RECURSE files RELATIVE ${SRC} ${SRC}/*.h ${SRC}/*.cc)
set(failures "")
foreach(file IN LISTS files)
  file(STRINGS ${SRC}/${file} lines REGEX "^[ \t]*#include")
  foreach(rule IN LISTS rules)
    string(FIND "${rule}" "|" bar)
    string(SUBSTRING "${rule}" 0 ${bar} area)
    math(EXPR from "${bar} + 1")
    string(SUBSTRING "${rule}" ${from} -1 regex)
    string(REPLACE "," "|" areas "${area}")
    if(file MATCHES "^(${areas})/")
      continue()
    endif()
    foreach(line IN LISTS lines)
      if(line MATCHES "${regex}")
        string(APPEND failures "  src/${file}: ${line} (only src/${areas}/ may; ask it through a function of its own)\n")
      endif()
    endforeach()
  endforeach()
endforeach()
if(failures)
  message(FATAL_ERROR "the include fence leaks:\n${failures}")
endif()
message(STATUS "fence.includes: heavy libraries' headers stay in their areas")
