/* fuzz_common.h: what the framework's fuzz targets (fuzz_request.c,
 * fuzz_websocket.c) share, defined in fuzz_common.c, which each links:
 *
 *   - LLVMFuzzerInitialize(), which silences the runtime's log unless
 *     WEFT_LOG_LEVEL asks for it (the logger middleware alone would write a
 *     line per request);
 *   - fuzz_run_input(), which runs one input as the root task of a runtime of
 *     one executor.
 */
#ifndef WEB_FRAMEWORK_FUZZ_COMMON_H
#define WEB_FRAMEWORK_FUZZ_COMMON_H

#include <weft.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Runs fn(arg) as the root task of weft_main_opts() with one executor.
 * When the runtime itself fails, prints "NAME: WHY" and aborts, so that the
 * fuzzer keeps the input; fn's own result is the target's to check. */
void fuzz_run_input(const char *name, weft_fn fn, void *arg);

#endif /* WEB_FRAMEWORK_FUZZ_COMMON_H */
