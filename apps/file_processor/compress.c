#include "fp.h"
int fp_compress_job(fp_run *r, fp_job *job) { (void)r; (void)job; return UV_ENOSYS; }
int fp_decompress_job(fp_run *r, fp_job *job) { (void)r; (void)job; return UV_ENOSYS; }
void fp_compress_cleanup(fp_run *r) { (void)r; }
