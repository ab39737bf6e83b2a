#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
/* glibc malloc tuning: mallopt(M_ARENA_MAX) and malloc_trim. */
#include <malloc.h>
#endif
