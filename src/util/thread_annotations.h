#pragma once
/// Clang's thread-safety annotations (as in abseil's and leveldb's
/// port/thread_annotations.h): members say which mutex guards them, functions
/// which mutexes they need or take. `clang++ -Wthread-safety` checks them
/// (scripts/thread-safety); other compilers see nothing. Use util::Mutex
/// (util/mutex.h): libstdc++'s std::mutex carries no annotations.

#if defined(__clang__)
#define MH_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MH_THREAD_ANNOTATION(x)
#endif

/// A type that acts as a lock ("mutex").
#define CAPABILITY(x) MH_THREAD_ANNOTATION(capability(x))
/// An RAII type that holds a capability for its lifetime.
#define SCOPED_CAPABILITY MH_THREAD_ANNOTATION(scoped_lockable)
/// The member may be read or written only with `x` held.
#define GUARDED_BY(x) MH_THREAD_ANNOTATION(guarded_by(x))
/// What the pointer points to may be used only with `x` held.
#define PT_GUARDED_BY(x) MH_THREAD_ANNOTATION(pt_guarded_by(x))
/// The caller must hold these.
#define REQUIRES(...) MH_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
/// The caller must not hold these (the function takes them).
#define EXCLUDES(...) MH_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
/// The function takes these and returns holding them.
#define ACQUIRE(...) MH_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
/// The function releases these.
#define RELEASE(...) MH_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
/// Tells the analysis that these are held here (checked at run time, if at all).
#define ASSERT_CAPABILITY(x) MH_THREAD_ANNOTATION(assert_capability(x))
/// `x` is taken before this one whenever both are held.
#define ACQUIRED_AFTER(...) MH_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) MH_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
/// Turns the analysis off for one function; say why beside it.
#define NO_THREAD_SAFETY_ANALYSIS MH_THREAD_ANNOTATION(no_thread_safety_analysis)
