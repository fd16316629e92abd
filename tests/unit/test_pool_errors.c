/* pool_error_from_result / pool_code_for_sqlstate: every SQLSTATE the SQL
 * functions and PostgreSQL raise maps to the status the client contract
 * promises. */
#include <stdio.h>
#include <string.h>

#include "pool.h"

static int passed, failed;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (cond) {                                                      \
			passed++;                                                \
		} else {                                                         \
			failed++;                                                \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
		}                                                                \
	} while (0)

static void sqlstate_maps_to(const char *state, Crm__Code want)
{
	Crm__Code got = pool_code_for_sqlstate(state);
	if (got != want)
		fprintf(stderr, "sqlstate %s: got code %d, want %d\n", state ? state : "(null)",
			(int)got, (int)want);
	CHECK(got == want);
}

static void test_dc_class_is_the_sql_functions_status(void)
{
	sqlstate_maps_to("DC400", CRM__CODE__INVALID_ARGUMENT);
	sqlstate_maps_to("DC401", CRM__CODE__UNAUTHENTICATED);
	sqlstate_maps_to("DC403", CRM__CODE__PERMISSION_DENIED);
	sqlstate_maps_to("DC404", CRM__CODE__NOT_FOUND);
	sqlstate_maps_to("DC409", CRM__CODE__CONFLICT);
	sqlstate_maps_to("DC410", CRM__CODE__ALREADY_EXISTS);
	sqlstate_maps_to("DC999", CRM__CODE__INTERNAL);
}

static void test_unique_violation_is_already_exists(void)
{
	sqlstate_maps_to("23505", CRM__CODE__ALREADY_EXISTS);
}

static void test_bad_data_and_constraints_are_invalid_argument(void)
{
	sqlstate_maps_to("22P02", CRM__CODE__INVALID_ARGUMENT); /* invalid text representation */
	sqlstate_maps_to("22001", CRM__CODE__INVALID_ARGUMENT); /* string too long */
	sqlstate_maps_to("23502", CRM__CODE__INVALID_ARGUMENT); /* not null */
	sqlstate_maps_to("23503", CRM__CODE__INVALID_ARGUMENT); /* foreign key */
	sqlstate_maps_to("23514", CRM__CODE__INVALID_ARGUMENT); /* check */
}

static void test_insufficient_privilege_is_permission_denied(void)
{
	sqlstate_maps_to("42501", CRM__CODE__PERMISSION_DENIED);
}

static void test_database_going_away_is_unavailable(void)
{
	sqlstate_maps_to("08006", CRM__CODE__UNAVAILABLE);
	sqlstate_maps_to("08001", CRM__CODE__UNAVAILABLE);
	sqlstate_maps_to("57P01", CRM__CODE__UNAVAILABLE);
	sqlstate_maps_to("57P02", CRM__CODE__UNAVAILABLE);
	sqlstate_maps_to("57P03", CRM__CODE__UNAVAILABLE);
	sqlstate_maps_to("53300", CRM__CODE__UNAVAILABLE); /* too many connections */
	sqlstate_maps_to("53100", CRM__CODE__UNAVAILABLE); /* disk full */
	sqlstate_maps_to("40001", CRM__CODE__UNAVAILABLE);
	sqlstate_maps_to("40P01", CRM__CODE__UNAVAILABLE);
	sqlstate_maps_to(NULL, CRM__CODE__UNAVAILABLE);    /* libpq lost the connection */
	sqlstate_maps_to("", CRM__CODE__UNAVAILABLE);
}

static void test_everything_else_is_internal(void)
{
	sqlstate_maps_to("42P01", CRM__CODE__INTERNAL);  /* undefined table: our bug */
	sqlstate_maps_to("42883", CRM__CODE__INTERNAL);  /* undefined function */
	sqlstate_maps_to("57014", CRM__CODE__INTERNAL);  /* query canceled */
	sqlstate_maps_to("57P04", CRM__CODE__INTERNAL);
	sqlstate_maps_to("40002", CRM__CODE__INTERNAL);
	sqlstate_maps_to("XX000", CRM__CODE__INTERNAL);
	sqlstate_maps_to("P0001", CRM__CODE__INTERNAL);  /* plain RAISE EXCEPTION */
}

static void test_lost_connection_result_is_unavailable(void)
{
	struct pool_error err;
	memset(&err, 0x55, sizeof err);
	pool_error_from_result(NULL, "server closed the connection unexpectedly\n", &err);
	CHECK(err.code == CRM__CODE__UNAVAILABLE);
	CHECK(strcmp(err.message, "database unavailable, retry later") == 0);
	CHECK(err.sqlstate[0] == '\0');
	CHECK(err.field[0] == '\0');
}

static void test_error_result_without_sqlstate_uses_connection_message(void)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_FATAL_ERROR);
	CHECK(res != NULL);
	struct pool_error err;
	pool_error_from_result(res, "could not receive data from server\nsecond line", &err);
	CHECK(err.code == CRM__CODE__UNAVAILABLE);
	CHECK(strcmp(err.message, "could not receive data from server") == 0);
	CHECK(err.field[0] == '\0');
	PQclear(res);
}

static void test_successful_result_is_ok(void)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	struct pool_error err;
	memset(&err, 0x55, sizeof err);
	pool_error_from_result(res, NULL, &err);
	CHECK(err.code == CRM__CODE__OK);
	CHECK(err.message[0] == '\0');
	PQclear(res);
	res = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
	pool_error_from_result(res, NULL, &err);
	CHECK(err.code == CRM__CODE__OK);
	PQclear(res);
}

int main(void)
{
	test_dc_class_is_the_sql_functions_status();
	test_unique_violation_is_already_exists();
	test_bad_data_and_constraints_are_invalid_argument();
	test_insufficient_privilege_is_permission_denied();
	test_database_going_away_is_unavailable();
	test_everything_else_is_internal();
	test_lost_connection_result_is_unavailable();
	test_error_result_without_sqlstate_uses_connection_message();
	test_successful_result_is_ok();
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
