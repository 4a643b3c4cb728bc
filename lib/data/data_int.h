/*
 * data_int.h - private to the data module's parts (data.c, data_tasks.c):
 * what they share besides data.h.  Not part of the library's interface.
 */
#ifndef MTL_DATA_INT_H
#define MTL_DATA_INT_H

#include "data.h"

/* A NUL-terminated copy of the msgpack string o, or NULL (no memory). */
char *data_dup_str(const msgpack_object *o);

#endif
