#pragma once

#include <cstdio>
#include <cstdlib>

// MRTRAIN_CHECK guards invariants whose breach would corrupt a model or checkpoint. It aborts
// in every build. Never CHECK what a peer, a file, a spec or a plugin controls: return a Status.
#define MRTRAIN_CHECK(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: MRTRAIN_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

#ifdef NDEBUG
#define MRTRAIN_DCHECK(cond) \
  do {                       \
  } while (0)
#else
#define MRTRAIN_DCHECK(cond) MRTRAIN_CHECK(cond)
#endif
