/* job.h: template_app's batch job and its options.
 *
 * main.c fills a template_app_config from config.json and the command line,
 * then runs template_app_run() as the root task of weft_main().
 */
#ifndef TEMPLATE_APP_JOB_H
#define TEMPLATE_APP_JOB_H

#include <stdint.h>

#include "config.h"

/** The options; each field's name is its JSON key and, with dashes, its
 * flag. */
typedef struct template_app_config {
  app_string_list input;   /* the files to work on */
  int64_t concurrency;     /* files worked on at once */
  int64_t chunk_bytes;     /* bytes read at a time */
  int64_t max_bytes_per_s; /* the most bytes read per second; 0: no limit */
  int log_level;
} template_app_config;

/** What the job ends with: main() turns it into the exit code. */
typedef struct template_app_result {
  int failed;      /* files that could not be read */
  int interrupted; /* the signal that stopped the job, or 0 */
} template_app_result;

/** What template_app_run() takes. */
typedef struct template_app_job {
  const template_app_config *cfg;
  template_app_result result;
} template_app_job;

/**
 * Works through every input file and prints the JSON report on stdout (the
 * root task's body; arg is a template_app_job *, whose result it fills).
 * Returns 0, or an error when the job could not start.
 */
int template_app_run(void *arg);

#endif /* TEMPLATE_APP_JOB_H */
