/*
 * The handlers of ltvpipe's top-level commands and their options tables
 * (cli/command_handlers.c), named by the command table in cli/main.c. Each
 * handler returns 0, a negative enum ltv_status with a->err set, or (monitor,
 * with CMD_EXIT_STATUS) a positive exit status.
 */
#ifndef LTV_COMMAND_HANDLERS_H
#define LTV_COMMAND_HANDLERS_H

#include "ltv/command.h"

extern const struct cmd_option cmd_run_options[];
extern const struct cmd_option cmd_status_options[];
extern const struct cmd_option cmd_score_options[];
extern const struct cmd_option cmd_predict_options[];
extern const struct cmd_option cmd_serve_options[];
extern const struct cmd_option cmd_evaluate_options[];
extern const struct cmd_option cmd_monitor_options[];
extern const struct cmd_option cmd_generate_options[];
extern const struct cmd_option cmd_merge_scores_options[];
extern const struct cmd_option cmd_dag_options[];

int cmd_run(struct command_args *a);
int cmd_status(struct command_args *a);
int cmd_score(struct command_args *a);
int cmd_predict(struct command_args *a);
int cmd_serve(struct command_args *a);
int cmd_evaluate(struct command_args *a);
int cmd_monitor(struct command_args *a);
int cmd_generate(struct command_args *a);
int cmd_merge(struct command_args *a);
int cmd_merge_scores(struct command_args *a);
int cmd_dag(struct command_args *a);
int cmd_diff(struct command_args *a);

#endif
