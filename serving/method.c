/*
 * The method table (contract in include/ltv/method.h): every stored model's
 * struct method, in table order, and the indices and counting slots the
 * predictor, score and the server name them by.
 */
#include <string.h>

#include "ltv/btyd_model.h"
#include "ltv/curves_model.h"
#include "ltv/hurdle_model.h"
#include "ltv/lookalike_model.h"
#include "ltv/method.h"
#include "ltv/multiplier_model.h"
#include "ltv/semantic_model.h"

const struct method *const method_table[METHOD_COUNT] = {
	&method_hurdle, &method_multiplier, &method_curves, &method_lookalike, &method_semantic,
	&method_bgnbd, &method_pareto_nbd,
};

int method_index(const char *name)
{
	for (int m = 0; m < METHOD_COUNT; m++)
		if (strcmp(method_table[m]->name, name) == 0)
			return m;
	return strcmp(name, "blend") == 0 ? METHOD_BLEND : -1;
}

const char *method_name(int index)
{
	if (index == METHOD_BLEND)
		return "blend";
	return index >= 0 && index < METHOD_COUNT ? method_table[index]->name : "global_median";
}

int method_slot(int index)
{
	return index >= 0 ? index : index == METHOD_BLEND ? METHOD_COUNT + 1 : METHOD_COUNT;
}

int method_of_slot(int slot)
{
	return slot < METHOD_COUNT ? slot : slot == METHOD_COUNT ? METHOD_GLOBAL_MEDIAN : METHOD_BLEND;
}
