/* Readers of result rows shared by the handlers, and small helpers. */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "server.h"

static const char *const role_names[] = {
	[CRM__ROLE__ROLE_UNSPECIFIED] = "unspecified",
	[CRM__ROLE__CONSULTANT] = "consultant",
	[CRM__ROLE__SALES_MANAGER] = "sales_manager",
	[CRM__ROLE__SERVICE_ADVISOR] = "service_advisor",
	[CRM__ROLE__CALL_CENTER] = "call_center",
	[CRM__ROLE__STORE_MANAGER] = "store_manager",
	[CRM__ROLE__GROUP_ANALYST] = "group_analyst",
	[CRM__ROLE__GROUP_ADMIN] = "group_admin",
	[CRM__ROLE__STORE_NODE] = "store_node",
};

const char *role_name(Crm__Role role)
{
	if ((unsigned)role < sizeof role_names / sizeof role_names[0] && role_names[role])
		return role_names[role];
	return "unknown";
}

Crm__Role role_from_name(const char *name)
{
	for (size_t i = 1; i < sizeof role_names / sizeof role_names[0]; i++)
		if (role_names[i] && strcmp(role_names[i], name) == 0)
			return (Crm__Role)i;
	return CRM__ROLE__ROLE_UNSPECIFIED;
}

int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Strings point into `res`: pack the message before the result is freed. */
void row_to_user(const PGresult *res, int row, int col, Crm__User *u)
{
	crm__user__init(u);
	u->id = PQgetvalue(res, row, col);
	u->username = PQgetvalue(res, row, col + 1);
	u->display_name = PQgetvalue(res, row, col + 2);
	u->role = role_from_name(PQgetvalue(res, row, col + 3));
	u->store_code = PQgetvalue(res, row, col + 4);
	u->store_name = PQgetvalue(res, row, col + 5);
}

void row_to_customer(const PGresult *res, int row, int col, Crm__Customer *cu)
{
	crm__customer__init(cu);
	cu->id = PQgetvalue(res, row, col);
	cu->name = PQgetvalue(res, row, col + 1);
	cu->phone = PQgetvalue(res, row, col + 2);
	cu->version = strtoull(PQgetvalue(res, row, col + 3), NULL, 10);
	cu->created_at = strtoll(PQgetvalue(res, row, col + 4), NULL, 10);
	cu->updated_at = strtoll(PQgetvalue(res, row, col + 5), NULL, 10);
	cu->created_by = PQgetvalue(res, row, col + 6);
	cu->store_code = PQgetvalue(res, row, col + 7);
}
