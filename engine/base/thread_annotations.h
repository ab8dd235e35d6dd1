#pragma once

// Clang's thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html), as
// in google/leveldb's port/thread_annotations.h. With clang and -Wthread-safety (the tsan
// config) the compiler checks that GUARDED_BY members are touched only under their mutex and
// that REQUIRES/EXCLUDES contracts hold; other compilers ignore them. Use them with the
// annotated Mutex of engine/base/mutex.h: std::mutex carries no annotations in libstdc++.
#if defined(__clang__)
#define MRTRAIN_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MRTRAIN_THREAD_ANNOTATION(x)
#endif

// A member that is read and written only with the given mutex held.
#define GUARDED_BY(x) MRTRAIN_THREAD_ANNOTATION(guarded_by(x))
// A pointer member whose pointee is read and written only with the given mutex held.
#define PT_GUARDED_BY(x) MRTRAIN_THREAD_ANNOTATION(pt_guarded_by(x))
// A function the caller must call with the given mutexes held.
#define REQUIRES(...) MRTRAIN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// A function the caller must call without the given mutexes (it takes them itself).
#define EXCLUDES(...) MRTRAIN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// A function that acquires or releases the given mutexes (none: the object itself).
#define ACQUIRE(...) MRTRAIN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) MRTRAIN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// A function that checks at run time that the mutex is held.
#define ASSERT_CAPABILITY(x) MRTRAIN_THREAD_ANNOTATION(assert_capability(x))
// A type that is a mutex, and an RAII type that holds one for its scope.
#define CAPABILITY(x) MRTRAIN_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY MRTRAIN_THREAD_ANNOTATION(scoped_lockable)
// A function the analysis cannot follow (say why next to it).
#define NO_THREAD_SAFETY_ANALYSIS MRTRAIN_THREAD_ANNOTATION(no_thread_safety_analysis)
