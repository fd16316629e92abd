/* Store relations: relation update, level changes and handover. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"
#include "stmts.h"
#include "textcheck.h"

void h_customer_update(struct request *r)
{
	req_fail(r, CRM__CODE__INTERNAL, NULL, "customer.update is not built yet");
}

void h_relation_update(struct request *r)
{
	req_fail(r, CRM__CODE__INTERNAL, NULL, "relation.update is not built yet");
}

void h_level_set(struct request *r)
{
	req_fail(r, CRM__CODE__INTERNAL, NULL, "level.set is not built yet");
}

void h_handover(struct request *r)
{
	req_fail(r, CRM__CODE__INTERNAL, NULL, "customer.handover is not built yet");
}
