/* io_internal.h: what the executor needs from the I/O part (io_*.c).
 * Private to runtime/src.
 */
#ifndef WEFT_IO_INTERNAL_H
#define WEFT_IO_INTERNAL_H

#include "internal.h"

/*
 * Closes the signal handles that weft_signal_wait() opened on e (they are
 * unreferenced, so they never keep the loop alive) and frees the registry.
 * The executor calls it at shutdown, before its last uv_run() and
 * uv_loop_close(); the close callbacks free the rest. Safe when no signal
 * was ever waited for.
 */
void weft__signals_close(weft__exec *e);

#endif /* WEFT_IO_INTERNAL_H */
