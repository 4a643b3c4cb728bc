/*
 * t_spec.h - the task spec of tests/mtl-tokenize.bats as C data, for the
 * tests of the input readers and of the example record: a sequence task
 * "topic" (greet, other) and a token task "ner" (O, B-PER, B-LOC).
 */
#ifndef MTL_T_SPEC_H
#define MTL_T_SPEC_H

#include "task.h"

static const char *const t_topic_labels[] = { "greet", "other" };
static const char *const t_ner_labels[] = { "O", "B-PER", "B-LOC" };

#define T_TASK_TOPIC { .name = "topic", .kind = MTL_TASK_SEQUENCE, \
		       .labels = (char **)t_topic_labels, .n_labels = 2 }
#define T_TASK_NER { .name = "ner", .kind = MTL_TASK_TOKEN, \
		     .labels = (char **)t_ner_labels, .n_labels = 3 }

#endif
