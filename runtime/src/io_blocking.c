/* io_blocking.c: running a blocking function on libuv's thread pool.
 *
 * The request and the function's result live on the calling task's stack.
 * The task always waits for the after-work callback, whether or not it was
 * cancelled, so that neither outlives the call.
 */
#include "internal.h"

typedef struct blocking_op {
  uv_work_t req;
  weft__task *task;
  weft_fn fn;
  void *arg;
  int result;
} blocking_op;

static void blocking_work(uv_work_t *req) {
  blocking_op *op = req->data;
  op->result = op->fn(op->arg);
}

static void blocking_done(uv_work_t *req, int status) {
  blocking_op *op = req->data;
  weft__wake(op->task, status < 0 ? status : op->result);
}

/* uv_cancel() succeeds only while the work is still queued: fn then never
 * runs and the after-work callback comes with UV_ECANCELED on the next loop
 * turn. Once fn runs, the callback comes when it returns. */
static void blocking_cancel(weft__task *t, void *data) {
  (void)t;
  uv_cancel((uv_req_t *)data);
}

int weft_blocking(weft_fn fn, void *arg) {
  if (weft__self() == NULL) return WEFT_ENOTASK;
  int r = weft__check_cancel();
  if (r != 0) return r;
  if (fn == NULL) return UV_EINVAL;
  blocking_op op;
  op.req.data = &op;
  op.task = weft__self();
  op.fn = fn;
  op.arg = arg;
  op.result = 0;
  r = uv_queue_work(&weft__current_exec->loop, &op.req, blocking_work,
                    blocking_done);
  if (r < 0) return r;
  return weft__park(blocking_cancel, &op.req);
}
