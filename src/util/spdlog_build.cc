// spdlog's compiled part, built into mailhook instead of loading Debian's
// libspdlog.so: the daemon uses a logger, a stderr sink and the pattern
// formatter of it, and the shared library is mapped whole (~500 KiB resident,
// bench/README.md, "Memory of an idle daemon"). Every file includes spdlog's
// headers in its compiled-library mode (SPDLOG_COMPILED_LIB, set by
// src/util/CMakeLists.txt): declarations only, so the implementation is
// compiled once, here, from the -inl.h files spdlog ships for this purpose,
// with the templates the daemon and its tests use instantiated.
#ifndef SPDLOG_COMPILED_LIB
#error "SPDLOG_COMPILED_LIB must be set for every file (src/util/CMakeLists.txt)"
#endif

#include <mutex>

#include <spdlog/common-inl.h>
#include <spdlog/details/backtracer-inl.h>
#include <spdlog/details/log_msg-inl.h>
#include <spdlog/details/log_msg_buffer-inl.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/details/os-inl.h>
#include <spdlog/details/periodic_worker-inl.h>
#include <spdlog/details/registry-inl.h>
#include <spdlog/logger-inl.h>
#include <spdlog/pattern_formatter-inl.h>
#include <spdlog/sinks/ansicolor_sink-inl.h>
#include <spdlog/sinks/base_sink-inl.h>
#include <spdlog/sinks/sink-inl.h>
#include <spdlog/sinks/stdout_sinks-inl.h>
#include <spdlog/spdlog-inl.h>

template class spdlog::sinks::base_sink<std::mutex>;
template class spdlog::sinks::base_sink<spdlog::details::null_mutex>;
// The sink of mailhook's log (util/log.cc).
template class spdlog::sinks::stdout_sink_base<spdlog::details::console_mutex>;
template class spdlog::sinks::stderr_sink<spdlog::details::console_mutex>;
// spdlog's default logger, made by its registry (unused by mailhook, kept as spdlog has it).
template class spdlog::sinks::ansicolor_sink<spdlog::details::console_mutex>;
template class spdlog::sinks::ansicolor_stdout_sink<spdlog::details::console_mutex>;
