/* weft.h: the weft runtime, one include for all of it.
 *
 * weft runs stackful tasks on libuv with structured concurrency: tasks live
 * in groups, groups live in cancellation scopes, and every call that waits
 * honours cancellation and deadlines. See README.md for a tour.
 */
#ifndef WEFT_H
#define WEFT_H

#include "weft/error.h"
#include "weft/executor.h"
#include "weft/task.h"
#include "weft/group.h"
#include "weft/scope.h"
#include "weft/chan.h"
#include "weft/io.h"
#include "weft/pool.h"
#include "weft/sync.h"
#include "weft/stream.h"
#include "weft/actor.h"
#include "weft/log.h"
#include "weft/metrics.h"

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

#endif /* WEFT_H */
