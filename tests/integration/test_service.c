/* After-sales (issue 6; sql/0017) over TLS against PostgreSQL, at a fixed
 * clock: VIN validation and uniqueness, vehicles and visits in the outbox,
 * base classes (archived, active, loyal, lost) across the window boundary
 * and the loyal threshold of the brand's policy (set by a group admin),
 * the return after being lost, maintenance reminders by months and by
 * mileage without duplicates, value classes with ties, erasure, and scope
 * (another store neither sees nor writes, in the handlers and again under
 * row-level security as crmd's role). crmd's daily run is checked last, on
 * a crmd of its own.
 *
 * Three stores of a brand of their own keep the counts exact: SV01 the
 * base classes, SV02 the value classes (and the other store of the scope
 * checks), SV03 the reminders. */
#include <time.h>

#include "itest.h"
#include "textcheck.h"

#define PASSWORD "service-test-pw-1"
#define DAY_MS (24LL * 3600 * 1000)
/* The fixed clock: 2025-06-01 00:00 UTC. */
#define T0 1748736000000LL

static PGconn *db;
static unsigned vin_counter;

/* ------------------------------------------------------------ helpers */

static long db_long(const char *sql, const char *param)
{
	const char *v = it_db_value(db, sql, param);
	return v ? atol(v) : -1;
}

static struct crmc *login_user(const char *user)
{
	struct crmc *c = it_connect();
	if (c && it_login_as(c, user, PASSWORD) != CRM__CODE__OK) {
		fprintf(stderr, "login as %s failed\n", user);
		crmc_close(c);
		return NULL;
	}
	return c;
}

static Crm__Code code_of(const Crm__Envelope *e)
{
	return e ? crmc_status(e) : CRM__CODE__INTERNAL;
}

static const char *field_of(const Crm__Envelope *e)
{
	return e && e->status && e->status->field ? e->status->field : "";
}

/* A VIN unique to this run (digits only, so never I, O or Q). */
static void new_vin(char out[18])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, 18, "LSV%08llu%06u", (unsigned long long)(ts.tv_sec % 100000000),
		 ++vin_counter % 1000000);
}

static bool make_customer(struct crmc *c, const char *name, char cid[37])
{
	char phone[16], rid[37];
	it_phone(phone);
	uuid_v7_new(cid);
	uuid_v7_new(rid);
	Crm__Customer cu = CRM__CUSTOMER__INIT;
	cu.id = cid;
	cu.name = (char *)name;
	cu.phone = phone;
	Crm__Relation rel = CRM__RELATION__INIT;
	rel.id = rid;
	rel.source = (char *)"walk_in";
	Crm__CustomerCreate cc = CRM__CUSTOMER_CREATE__INIT;
	cc.customer = &cu;
	cc.relation = &rel;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_CREATE;
	req.customer_create = &cc;
	Crm__Envelope *e = it_call(c, &req);
	bool ok = code_of(e) == CRM__CODE__OK;
	if (!ok)
		fprintf(stderr, "create %s: %s\n", name, e ? crmc_status_message(e) : "no answer");
	it_free(e);
	return ok;
}

static Crm__Envelope *add_vehicle(struct crmc *c, const char *id, const char *customer_id,
				  const char *vin, const char *purchased_on)
{
	Crm__Vehicle v = CRM__VEHICLE__INIT;
	v.id = (char *)id;
	v.customer_id = (char *)customer_id;
	v.vin = (char *)vin;
	v.model = (char *)"帕萨特 Passat";
	v.plate = (char *)"京A 12345";
	v.purchased_on = (char *)(purchased_on ? purchased_on : "");
	Crm__VehicleAdd va = CRM__VEHICLE_ADD__INIT;
	va.vehicle = &v;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VEHICLE_ADD;
	req.vehicle_add = &va;
	return it_call(c, &req);
}

/* A customer with one vehicle; the vehicle's id in `vid`. */
static bool customer_with_car(struct crmc *c, const char *name, const char *purchased_on,
			      char cid[37], char vid[37])
{
	char vin[18];
	new_vin(vin);
	uuid_v7_new(vid);
	if (!make_customer(c, name, cid))
		return false;
	Crm__Envelope *e = add_vehicle(c, vid, cid, vin, purchased_on);
	bool ok = code_of(e) == CRM__CODE__OK;
	if (!ok)
		fprintf(stderr, "vehicle of %s: %s\n", name, e ? crmc_status_message(e) : "none");
	it_free(e);
	return ok;
}

static Crm__Envelope *add_visit_id(struct crmc *c, const char *id, const char *vid, int64_t at,
				   uint32_t km, const char *type, int64_t fen)
{
	Crm__ServiceVisit v = CRM__SERVICE_VISIT__INIT;
	v.id = (char *)id;
	v.vehicle_id = (char *)vid;
	v.at = at;
	v.mileage = km;
	v.type = (char *)type;
	v.amount = fen;
	Crm__VisitAdd va = CRM__VISIT_ADD__INIT;
	va.visit = &v;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VISIT_ADD;
	req.visit_add = &va;
	return it_call(c, &req);
}

static bool visit(struct crmc *c, const char *vid, int64_t at, uint32_t km, int64_t fen)
{
	char id[37];
	uuid_v7_new(id);
	Crm__Envelope *e = add_visit_id(c, id, vid, at, km, "maintenance", fen);
	bool ok = code_of(e) == CRM__CODE__OK;
	if (!ok)
		fprintf(stderr, "visit: %s\n", e ? crmc_status_message(e) : "none");
	it_free(e);
	return ok;
}

static Crm__Envelope *base_list(struct crmc *c, const char *class_, const char *store,
				const char *customer_id, int64_t at)
{
	Crm__BaseList bl = CRM__BASE_LIST__INIT;
	bl.class_ = (char *)(class_ ? class_ : "");
	bl.store_code = (char *)(store ? store : "");
	bl.customer_id = (char *)(customer_id ? customer_id : "");
	bl.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_BASE_LIST;
	req.base_list = &bl;
	return it_call(c, &req);
}

/* The base row of one customer at SV-store `store` at `at` (NULL: none). */
static const Crm__BaseCustomer *base_of(Crm__Envelope *e)
{
	if (code_of(e) != CRM__CODE__OK || e->body_case != CRM__ENVELOPE__BODY_BASE_PAGE ||
	    e->base_page->n_customers != 1)
		return NULL;
	return e->base_page->customers[0];
}

static Crm__Envelope *reminders_run(struct crmc *c, int64_t at)
{
	Crm__RemindersRun rr = CRM__REMINDERS_RUN__INIT;
	rr.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_REMINDERS_RUN;
	req.reminders_run = &rr;
	return it_call(c, &req);
}

static Crm__Envelope *value_recompute(struct crmc *c, const char *store, int64_t at)
{
	Crm__ValueRecompute vr = CRM__VALUE_RECOMPUTE__INIT;
	vr.store_code = (char *)(store ? store : "");
	vr.at = at;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VALUE_RECOMPUTE;
	req.value_recompute = &vr;
	return it_call(c, &req);
}

/* ------------------------------------------------------------ tests */

/* VIN: 17 characters of A-Z and 0-9 without I, O, Q; unique in the group;
 * the same id again is idempotent; each new vehicle is one outbox change
 * whose payload is the packed Vehicle. */
static void test_vin_validation(struct crmc *adv)
{
	char cid[37], vid[37], vin[18];
	CHECK(make_customer(adv, "车主甲", cid));
	new_vin(vin);
	uuid_v7_new(vid);

	Crm__Envelope *e = add_vehicle(adv, vid, cid, "LSVAA4182E212345", NULL);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "vin");
	CHECK(e && strstr(crmc_status_message(e), "17 characters"));
	it_free(e);
	e = add_vehicle(adv, vid, cid, "LSVAA4182E21234O5", NULL);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "vin");
	CHECK(e && strstr(crmc_status_message(e), "I, O or Q"));
	it_free(e);
	e = add_vehicle(adv, vid, cid, "LSVAA4182E21234I5", NULL);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	it_free(e);
	e = add_vehicle(adv, vid, cid, "LSVAQ4182E2123455", NULL);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	it_free(e);
	e = add_vehicle(adv, vid, cid, "LSVAA4182E21234-5", NULL);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "vin");
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.vehicles WHERE id = $1::uuid", vid) == 0);

	/* Lower case is accepted and stored upper case. */
	char lower[18];
	for (int i = 0; i < 18; i++)
		lower[i] = (char)(vin[i] >= 'A' && vin[i] <= 'Z' ? vin[i] - 'A' + 'a' : vin[i]);
	e = add_vehicle(adv, vid, cid, lower, "2025-01-15");
	CHECK(code_of(e) == CRM__CODE__OK);
	if (code_of(e) == CRM__CODE__OK) {
		CHECK_STR(e->vehicle_reply->vehicle->vin, vin);
		CHECK_STR(e->vehicle_reply->vehicle->plate, "京A12345");
		CHECK_STR(e->vehicle_reply->vehicle->purchased_on, "2025-01-15");
		CHECK_STR(e->vehicle_reply->vehicle->store_code, "SV01");
		CHECK(!e->vehicle_reply->existed);
	}
	it_free(e);
	/* The same id again: nothing written. */
	e = add_vehicle(adv, vid, cid, vin, "2025-01-15");
	CHECK(code_of(e) == CRM__CODE__OK && e->vehicle_reply->existed);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity = 'vehicle' AND entity_id = $1::uuid",
		      vid) == 1);
	const char *hex = it_db_value(db, "SELECT encode(payload, 'hex') FROM crm.outbox"
					  " WHERE entity = 'vehicle' AND entity_id = $1::uuid", vid);
	if (hex) {
		size_t n = strlen(hex) / 2;
		uint8_t *buf = malloc(n ? n : 1);
		for (size_t i = 0; buf && i < n; i++) {
			unsigned b;
			sscanf(hex + 2 * i, "%2x", &b);
			buf[i] = (uint8_t)b;
		}
		Crm__Vehicle *pv = buf ? crm__vehicle__unpack(NULL, n, buf) : NULL;
		CHECK(pv != NULL);
		if (pv) {
			CHECK_STR(pv->id, vid);
			CHECK_STR(pv->vin, vin);
			CHECK_STR(pv->customer_id, cid);
			CHECK_STR(pv->store_code, "SV01");
			CHECK(pv->version == 1);
			crm__vehicle__free_unpacked(pv, NULL);
		}
		free(buf);
	}
	/* The same VIN on another vehicle. */
	char other[37];
	uuid_v7_new(other);
	e = add_vehicle(adv, other, cid, vin, NULL);
	CHECK(code_of(e) == CRM__CODE__ALREADY_EXISTS);
	CHECK_STR(field_of(e), "vin");
	it_free(e);
	/* Find by VIN, by plate, by customer. */
	Crm__VehicleList vl = CRM__VEHICLE_LIST__INIT;
	vl.vin = vin;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VEHICLE_LIST;
	req.vehicle_list = &vl;
	e = it_call(adv, &req);
	CHECK(code_of(e) == CRM__CODE__OK && e->vehicle_page->n_vehicles == 1 &&
	      !strcmp(e->vehicle_page->vehicles[0]->id, vid));
	it_free(e);
	vl.vin = (char *)"";
	vl.customer_id = cid;
	e = it_call(adv, &req);
	CHECK(code_of(e) == CRM__CODE__OK && e->vehicle_page->n_vehicles == 1);
	it_free(e);
	vl.customer_id = (char *)"";
	vl.plate = (char *)"京a-12345";
	e = it_call(adv, &req);
	CHECK(code_of(e) == CRM__CODE__OK && e->vehicle_page->n_vehicles >= 1);
	it_free(e);
}

/* A visit: recorded by the store's advisor, idempotent, in the outbox;
 * the odometer never runs backwards; only service roles record. */
static void test_visits(struct crmc *adv, struct crmc *sales)
{
	char cid[37], vid[37], id[37];
	CHECK(customer_with_car(adv, "车主乙", NULL, cid, vid));
	uuid_v7_new(id);
	Crm__Envelope *e = add_visit_id(adv, id, vid, T0 - 30 * DAY_MS, 12000, "repair", 128050);
	CHECK(code_of(e) == CRM__CODE__OK);
	if (code_of(e) == CRM__CODE__OK) {
		const Crm__ServiceVisit *v = e->visit_reply->visit;
		CHECK(v->mileage == 12000 && v->amount == 128050 && v->at == T0 - 30 * DAY_MS);
		CHECK_STR(v->store_code, "SV01");
		CHECK_STR(v->type, "repair");
		CHECK_STR(v->customer_id, cid);
		CHECK(!v->returned && !e->visit_reply->existed);
	}
	it_free(e);
	e = add_visit_id(adv, id, vid, T0 - 30 * DAY_MS, 12000, "repair", 128050);
	CHECK(code_of(e) == CRM__CODE__OK && e->visit_reply->existed);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity = 'service_visit'"
		      " AND entity_id = $1::uuid", id) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.service_visits WHERE vehicle_id = $1::uuid", vid) == 1);

	uuid_v7_new(id);
	e = add_visit_id(adv, id, vid, T0 - 10 * DAY_MS, 11000, "maintenance", 0);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "mileage");
	it_free(e);
	e = add_visit_id(adv, id, vid, T0 - 40 * DAY_MS, 13000, "maintenance", 0);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "mileage");
	it_free(e);
	e = add_visit_id(adv, id, vid, T0 - 10 * DAY_MS, 13000, "wash", 0);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "visit.type");
	it_free(e);
	e = add_visit_id(adv, id, vid, T0 - 10 * DAY_MS, 13000, "warranty", -1);
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "visit.amount");
	it_free(e);
	/* A consultant sells; recording service is not theirs. */
	e = add_visit_id(sales, id, vid, T0 - 10 * DAY_MS, 13000, "warranty", 0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	/* visit.list by vehicle, newest first. */
	CHECK(visit(adv, vid, T0 - 5 * DAY_MS, 13500, 50000));
	Crm__VisitList vl = CRM__VISIT_LIST__INIT;
	vl.vehicle_id = vid;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VISIT_LIST;
	req.visit_list = &vl;
	e = it_call(adv, &req);
	CHECK(code_of(e) == CRM__CODE__OK && e->visit_page->n_visits == 2 &&
	      e->visit_page->visits[0]->mileage == 13500);
	it_free(e);
}

/* crmd's role under row-level security, in a transaction with the scope
 * crm.session_begin would set for `user`: how many rows `sql` counts. */
static long count_as(PGconn *app, const char *user, const char *sql, const char *param)
{
	char q[256];
	snprintf(q, sizeof q,
		 "SELECT set_config('crm.role', u.role, true),"
		 " set_config('crm.store_id', coalesce(u.store_id::text, ''), true),"
		 " set_config('crm.user_id', u.id::text, true) FROM crm.users u"
		 " WHERE u.username = '%s'", user);
	long n = -1;
	PGresult *res = PQexec(app, "BEGIN");
	PQclear(res);
	res = PQexec(app, q);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		const char *v = it_db_value(app, sql, param);
		n = v ? atol(v) : -1;
	}
	PQclear(res);
	PQclear(PQexec(app, "ROLLBACK"));
	return n;
}

/* The same scope, checked again by PostgreSQL: as crmd's role the other
 * store's advisor sees no row of the car, its visits or its base, and may
 * not insert a visit of it. */
static void test_row_level_security(const char *vid)
{
	char pw[256] = "", line[512];
	FILE *f = fopen(it_env("CRMD_CONFIG"), "r");
	while (f && fgets(line, sizeof line, f))
		if (!pw[0] && sscanf(line, "password = %255s", pw) == 1)
			break;
	if (f)
		fclose(f);
	const char *keys[] = {"host", "port", "dbname", "user", "password", NULL};
	const char *vals[] = {"127.0.0.1", it_env("CRM_PG_PORT"), "crm", "crmd", pw, NULL};
	PGconn *app = PQconnectdbParams(keys, vals, 0);
	CHECK(PQstatus(app) == CONNECTION_OK);
	if (PQstatus(app) != CONNECTION_OK) {
		PQfinish(app);
		return;
	}
	const char *vehicles = "SELECT count(*) FROM crm.vehicles WHERE id = $1::uuid";
	const char *visits = "SELECT count(*) FROM crm.service_visits WHERE vehicle_id = $1::uuid";
	CHECK(count_as(app, "sv1.advisor", vehicles, vid) == 1);
	CHECK(count_as(app, "sv1.advisor", visits, vid) == 1);
	CHECK(count_as(app, "sv2.advisor", vehicles, vid) == 0);
	CHECK(count_as(app, "sv2.advisor", visits, vid) == 0);
	CHECK(count_as(app, "sv2.advisor", "SELECT count(*) FROM crm.base_rows(NULL, NULL, now())"
			" b JOIN crm.vehicles v ON v.customer_id = b.customer_id"
			" WHERE v.id = $1::uuid", vid) == 0);
	/* An insert of a visit of that car at SV02, as SV02, is refused by the
	 * policy (an error: -1), though crmd's role may insert visits. */
	char insert[640];
	const char *owner = it_db_value(db, "SELECT customer_id FROM crm.vehicles"
					    " WHERE id = $1::uuid", vid);
	snprintf(insert, sizeof insert,
		 "WITH x AS (INSERT INTO crm.service_visits (id, vehicle_id, customer_id,"
		 " store_id, at, mileage, type, amount, created_at) VALUES (gen_random_uuid(),"
		 " $1::uuid, '%s', nullif(current_setting('crm.store_id'), '')::uuid, now(),"
		 " 99999, 'repair', 0, now()) RETURNING 1) SELECT count(*) FROM x",
		 owner ? owner : "");
	CHECK(count_as(app, "sv2.advisor", insert, vid) == -1);
	CHECK(db_long("SELECT count(*) FROM crm.service_visits WHERE vehicle_id = $1::uuid"
		      " AND mileage = 99999", vid) == 0);
	PQfinish(app);
}

/* Another store, with no relation to the customer, neither sees the car
 * nor records its visits nor lists the first store's base. */
static void test_scope(struct crmc *adv, struct crmc *other)
{
	char cid[37], vid[37], id[37], vin[18];
	CHECK(customer_with_car(adv, "车主丙", NULL, cid, vid));
	CHECK(visit(adv, vid, T0 - 20 * DAY_MS, 5000, 10000));
	Crm__VehicleList vl = CRM__VEHICLE_LIST__INIT;
	vl.id = vid;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VEHICLE_LIST;
	req.vehicle_list = &vl;
	Crm__Envelope *e = it_call(other, &req);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	vl.id = (char *)"";
	vl.customer_id = cid;
	e = it_call(other, &req);
	CHECK(code_of(e) == CRM__CODE__OK && e->vehicle_page->n_vehicles == 0);
	it_free(e);
	uuid_v7_new(id);
	e = add_visit_id(other, id, vid, T0 - 10 * DAY_MS, 6000, "maintenance", 100);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.service_visits WHERE id = $1::uuid", id) == 0);
	/* Nor registers a car for that customer. */
	new_vin(vin);
	uuid_v7_new(id);
	e = add_vehicle(other, id, cid, vin, NULL);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	Crm__VisitList sl = CRM__VISIT_LIST__INIT;
	sl.customer_id = cid;
	req.body_case = CRM__ENVELOPE__BODY_VISIT_LIST;
	req.visit_list = &sl;
	e = it_call(other, &req);
	CHECK(code_of(e) == CRM__CODE__OK && e->visit_page->n_visits == 0);
	it_free(e);
	e = base_list(other, "", "SV01", NULL, T0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	e = base_list(other, "", NULL, cid, T0);
	CHECK(code_of(e) == CRM__CODE__OK && e->base_page->n_customers == 0);
	it_free(e);
	test_row_level_security(vid);
}

/* SV01's base at T0: four customers, one per shape, then the window's
 * boundary, the loyal threshold and the return after being lost. */
static void test_base_classes(struct crmc *adv)
{
	char a[37], va[37], b[37], vb[37], c[37], vc[37], d[37], vd[37];
	CHECK(customer_with_car(adv, "基盘甲", NULL, a, va));
	CHECK(customer_with_car(adv, "基盘乙", NULL, b, vb));
	CHECK(customer_with_car(adv, "基盘丙", NULL, c, vc));
	CHECK(customer_with_car(adv, "基盘丁", NULL, d, vd));
	CHECK(visit(adv, va, T0 - 400 * DAY_MS, 10000, 50000)); /* archived, lost */
	CHECK(visit(adv, vb, T0 - 200 * DAY_MS, 10000, 50000)); /* active, lost */
	CHECK(visit(adv, vc, T0 - 100 * DAY_MS, 10000, 50000)); /* active */
	CHECK(visit(adv, vc, T0 - 30 * DAY_MS, 12000, 50000));
	CHECK(visit(adv, vd, T0 - 300 * DAY_MS, 10000, 50000)); /* active, loyal */
	CHECK(visit(adv, vd, T0 - 150 * DAY_MS, 15000, 50000));
	CHECK(visit(adv, vd, T0 - 20 * DAY_MS, 20000, 50000));

	/* The earlier tests' customers of SV01 (車主甲 has no visit; 乙 two
	 * recent, 丙 one recent) count as well: 2 more archived and active. */
	Crm__Envelope *e = base_list(adv, "", NULL, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__OK);
	if (code_of(e) == CRM__CODE__OK) {
		const Crm__BasePage *p = e->base_page;
		CHECK(p->archived == 6);
		CHECK(p->active == 5);
		CHECK(p->loyal == 1);
		CHECK(p->lost == 2);
		CHECK(p->n_customers == 6);
	}
	it_free(e);
	e = base_list(adv, "lost", NULL, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__OK && e->base_page->n_customers == 2 &&
	      e->base_page->lost == 2 && e->base_page->archived == 6);
	for (size_t i = 0; code_of(e) == CRM__CODE__OK && i < e->base_page->n_customers; i++)
		CHECK(!strcmp(e->base_page->customers[i]->customer_id, a) ||
		      !strcmp(e->base_page->customers[i]->customer_id, b));
	it_free(e);
	e = base_list(adv, "loyal", NULL, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__OK && e->base_page->n_customers == 1 &&
	      !strcmp(e->base_page->customers[0]->customer_id, d));
	it_free(e);
	e = base_list(adv, "active", NULL, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__OK && e->base_page->n_customers == 5);
	it_free(e);
	e = base_list(adv, "archived", NULL, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__OK && e->base_page->n_customers == 6);
	it_free(e);
	/* Before any of their visits nobody is in the base. */
	e = base_list(adv, "", NULL, NULL, T0 - 500 * DAY_MS);
	CHECK(code_of(e) == CRM__CODE__OK && e->base_page->archived == 0 &&
	      e->base_page->n_customers == 0);
	it_free(e);

	/* The lost window (6 months) of 丙's last visit, T0 - 30 days: not
	 * lost a day before it closes, lost a day after. */
	const Crm__BaseCustomer *row;
	int64_t last = T0 - 30 * DAY_MS;
	char last_s[24];
	snprintf(last_s, sizeof last_s, "%lld", (long long)last);
	const char *closes_s = it_db_value(
		db, "SELECT crm.ms(crm.from_ms($1::bigint) + interval '6 months')", last_s);
	int64_t closes = closes_s ? atoll(closes_s) : 0;
	e = base_list(adv, "", NULL, c, closes - DAY_MS);
	row = base_of(e);
	CHECK(row && row->active && !row->lost && row->visits == 2 && row->visits_12m == 2);
	it_free(e);
	e = base_list(adv, "", NULL, c, closes);
	row = base_of(e);
	CHECK(row && row->active && row->lost);
	it_free(e);
	e = base_list(adv, "", NULL, c, closes + DAY_MS);
	row = base_of(e);
	CHECK(row && row->lost && row->active);
	it_free(e);
	/* Active ends 12 months after the last visit. */
	e = base_list(adv, "", NULL, c, last + 366 * DAY_MS);
	row = base_of(e);
	CHECK(row && !row->active && row->lost && row->archived && row->visits_12m == 0);
	it_free(e);

	/* The loyal threshold is the brand's: a group admin sets 2 for the
	 * brand, and 2 visits make 丙 loyal; an advisor may not set it. */
	Crm__ServicePolicy pol = CRM__SERVICE_POLICY__INIT;
	pol.brand = (char *)"SvcTest";
	pol.lost_after_months = 6;
	pol.loyal_visits = 2;
	pol.reminder_months = 6;
	pol.reminder_km = 10000;
	pol.reminder_lead_days = 14;
	pol.value_a_pct = 5;
	pol.value_b_pct = 15;
	Crm__ServicePolicySet ps = CRM__SERVICE_POLICY_SET__INIT;
	ps.policy = &pol;
	Crm__Envelope preq = CRM__ENVELOPE__INIT;
	preq.body_case = CRM__ENVELOPE__BODY_SERVICE_POLICY_SET;
	preq.service_policy_set = &ps;
	e = it_call(adv, &preq);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	struct crmc *admin = it_login_demo("group_admin", NULL);
	CHECK(admin != NULL);
	pol.value_b_pct = 96;
	e = admin ? it_call(admin, &preq) : NULL;
	CHECK(code_of(e) == CRM__CODE__INVALID_ARGUMENT);
	CHECK_STR(field_of(e), "value_b_pct");
	it_free(e);
	pol.value_b_pct = 15;
	e = admin ? it_call(admin, &preq) : NULL;
	CHECK(code_of(e) == CRM__CODE__OK && e->service_policies->n_policies == 2);
	if (code_of(e) == CRM__CODE__OK && e->service_policies->n_policies == 2) {
		CHECK_STR(e->service_policies->policies[0]->brand, "");
		CHECK(e->service_policies->policies[0]->loyal_visits == 3);
		CHECK_STR(e->service_policies->policies[1]->brand, "SvcTest");
		CHECK(e->service_policies->policies[1]->loyal_visits == 2);
		CHECK(e->service_policies->policies[1]->value_a_pct == 5.0);
	}
	it_free(e);
	if (admin)
		crmc_close(admin);
	e = base_list(adv, "", NULL, c, T0);
	row = base_of(e);
	CHECK(row && row->loyal);
	it_free(e);
	e = base_list(adv, "loyal", NULL, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__OK && e->base_page->loyal == 3);
	it_free(e);
	CHECK(it_db_value(db, "UPDATE crm.service_policy SET loyal_visits = 3"
			      " WHERE brand = 'SvcTest' RETURNING brand", NULL) != NULL);
	e = base_list(adv, "", NULL, c, T0);
	row = base_of(e);
	CHECK(row && !row->loyal);
	it_free(e);

	/* 甲 comes back after 390 days: a return event at the visit's time,
	 * active again, no longer lost. A visit inside the window is none. */
	char id[37];
	uuid_v7_new(id);
	e = add_visit_id(adv, id, va, T0 - 10 * DAY_MS, 30000, "maintenance", 80000);
	CHECK(code_of(e) == CRM__CODE__OK && e->visit_reply->visit->returned);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.base_events WHERE visit_id = $1::uuid"
		      " AND kind = 'returned'", id) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.base_events e JOIN crm.service_visits v"
		      " ON v.id = e.visit_id WHERE v.vehicle_id = $1::uuid", vc) == 0);
	e = base_list(adv, "", NULL, a, T0);
	row = base_of(e);
	CHECK(row && row->active && !row->lost && row->returned_at == T0 - 10 * DAY_MS);
	it_free(e);
	/* Seen before the return, the customer is still lost. */
	e = base_list(adv, "", NULL, a, T0 - 11 * DAY_MS);
	row = base_of(e);
	CHECK(row && row->lost && row->returned_at == 0);
	it_free(e);
	e = base_list(adv, "", NULL, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__OK && e->base_page->lost == 1 && e->base_page->active == 6);
	it_free(e);
}

/* SV03: reminders by months (no distance known), by mileage (the
 * purchase date at 0 km gives the daily distance), none when not due, and
 * no second task while one is open. */
static void test_reminders(struct crmc *adv3, const char *adv3_name)
{
	char c1[37], v1[37], c2[37], v2[37], c3[37], v3[37];
	CHECK(customer_with_car(adv3, "保养甲", NULL, c1, v1));
	CHECK(customer_with_car(adv3, "保养乙", "2025-02-21", c2, v2));
	CHECK(customer_with_car(adv3, "保养丙", "2025-02-21", c3, v3));
	CHECK(visit(adv3, v1, T0 - 175 * DAY_MS, 5000, 30000)); /* due ~T0 + 7 d by months */
	CHECK(visit(adv3, v2, T0 - 50 * DAY_MS, 8000, 30000));  /* 160 km a day: ~T0 + 12.5 d */
	CHECK(visit(adv3, v3, T0 - 10 * DAY_MS, 500, 30000));   /* 5.5 km a day: by months */

	/* A run before any is due creates nothing. */
	Crm__Envelope *e = reminders_run(adv3, T0 - 60 * DAY_MS);
	CHECK(code_of(e) == CRM__CODE__OK && e->reminders_reply->due == 0 &&
	      e->reminders_reply->n_tasks == 0);
	it_free(e);

	e = reminders_run(adv3, T0);
	CHECK(code_of(e) == CRM__CODE__OK);
	if (code_of(e) == CRM__CODE__OK) {
		const Crm__RemindersReply *r = e->reminders_reply;
		CHECK(r->due == 2 && r->n_tasks == 2 && r->already_open == 0 && r->no_relation == 0);
		if (r->due != 2 || r->n_tasks != 2)
			fprintf(stderr, "reminders at T0: due %u, created %zu, open %u, no relation %u\n",
				r->due, r->n_tasks, r->already_open, r->no_relation);
		for (size_t i = 0; i < r->n_tasks; i++) {
			const Crm__Task *t = r->tasks[i];
			CHECK_STR(t->owner, adv3_name);
			CHECK_STR(t->status, "open");
			CHECK_STR(t->store_code, "SV03");
			bool first = !strcmp(t->customer_id, c1);
			CHECK(first || !strcmp(t->customer_id, c2));
			if (first) {
				CHECK(strstr(t->purpose, "6 months") != NULL);
				CHECK(t->due_at > T0 + 5 * DAY_MS && t->due_at < T0 + 10 * DAY_MS);
			} else {
				CHECK(strstr(t->purpose, "18000 km") != NULL);
				CHECK(t->due_at > T0 + 12 * DAY_MS && t->due_at < T0 + 13 * DAY_MS);
			}
			CHECK(db_long("SELECT count(*) FROM crm.outbox WHERE entity = 'task'"
				      " AND entity_id = $1::uuid", t->id) == 1);
		}
	}
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE cadence_key = 'svc/' || $1", v1) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE cadence_key = 'svc/' || $1", v3) == 0);

	/* Again: both covered, nothing new. */
	e = reminders_run(adv3, T0 + DAY_MS);
	CHECK(code_of(e) == CRM__CODE__OK && e->reminders_reply->due == 2 &&
	      e->reminders_reply->already_open == 2 && e->reminders_reply->n_tasks == 0);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE cadence_key = 'svc/' || $1", v1) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.tasks WHERE cadence_key = 'svc/' || $1", v2) == 1);
}

/* SV02: 20 customers with spend; A the top 5% (one place, but the two
 * tied at the top both), B to 20% (ranks up to 4, ties included), C the
 * rest with spend; no spend, or spend older than 12 months, no class. */
static void test_value_classes(struct crmc *adv2, struct crmc *mgr2, struct crmc *adv)
{
	static const int64_t yuan[20] = {10000, 10000, 5000, 4000, 4000, 3000, 2900, 2800, 2700,
					 2600, 2500, 2400, 2300, 2200, 2100, 2000, 1900, 1800,
					 1700, 1600};
	char ids[20][37], vid[37], none[37], old[37], vold[37];
	for (int i = 0; i < 20; i++) {
		char name[32];
		snprintf(name, sizeof name, "价值%02d", i);
		CHECK(customer_with_car(adv2, name, NULL, ids[i], vid));
		/* Split in two visits: spend is their sum. */
		CHECK(visit(adv2, vid, T0 - 100 * DAY_MS, 1000, yuan[i] * 100 / 2));
		CHECK(visit(adv2, vid, T0 - 50 * DAY_MS, 2000, yuan[i] * 100 - yuan[i] * 100 / 2));
	}
	CHECK(customer_with_car(adv2, "价值零", NULL, none, vid));
	CHECK(visit(adv2, vid, T0 - 50 * DAY_MS, 1000, 0));
	CHECK(customer_with_car(adv2, "价值旧", NULL, old, vold));
	CHECK(visit(adv2, vold, T0 - 400 * DAY_MS, 1000, 9000000));

	/* Advisors do not recompute; another store's manager not this store. */
	Crm__Envelope *e = value_recompute(adv2, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	(void)adv;
	e = value_recompute(mgr2, NULL, T0);
	CHECK(code_of(e) == CRM__CODE__OK);
	if (code_of(e) == CRM__CODE__OK) {
		const Crm__ValueReply *r = e->value_reply;
		CHECK(r->n_stores == 1 && r->computed_at == T0);
		if (r->n_stores == 1) {
			CHECK_STR(r->stores[0]->store_code, "SV02");
			CHECK(r->stores[0]->a == 2 && r->stores[0]->b == 3 && r->stores[0]->c == 15);
		}
	}
	it_free(e);
	e = value_recompute(mgr2, "SV01", T0);
	CHECK(code_of(e) == CRM__CODE__PERMISSION_DENIED);
	it_free(e);
	CHECK(db_long("SELECT count(*) FROM crm.audit_log WHERE action = 'value.recompute'"
		      " AND entity_id = $1", "SV02") >= 1);

	const char *want[20] = {"A", "A", "B", "B", "B"};
	for (int i = 0; i < 20; i++) {
		e = base_list(adv2, "", NULL, ids[i], T0);
		const Crm__BaseCustomer *row = base_of(e);
		CHECK(row != NULL);
		if (row) {
			CHECK_STR(row->value_class, want[i] ? want[i] : "C");
			CHECK(row->spend_12m == yuan[i] * 100);
			CHECK(row->value_computed_at == T0);
		}
		it_free(e);
	}
	e = base_list(adv2, "", NULL, none, T0);
	CHECK(base_of(e) && !strcmp(base_of(e)->value_class, ""));
	it_free(e);
	e = base_list(adv2, "", NULL, old, T0);
	CHECK(base_of(e) && !strcmp(base_of(e)->value_class, "") && base_of(e)->lost);
	it_free(e);
}

/* Erasure blanks the plate and the visits' notes; VIN, mileage and amount
 * (counts and sums) stay. */
static void test_erase(struct crmc *adv)
{
	char cid[37], vid[37], id[37];
	CHECK(customer_with_car(adv, "将删除", NULL, cid, vid));
	Crm__ServiceVisit v = CRM__SERVICE_VISIT__INIT;
	uuid_v7_new(id);
	v.id = id;
	v.vehicle_id = vid;
	v.at = T0 - DAY_MS;
	v.mileage = 3000;
	v.type = (char *)"accident";
	v.amount = 990000;
	v.note = (char *)"车主说了住址";
	Crm__VisitAdd va = CRM__VISIT_ADD__INIT;
	va.visit = &v;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_VISIT_ADD;
	req.visit_add = &va;
	Crm__Envelope *e = it_call(adv, &req);
	CHECK(code_of(e) == CRM__CODE__OK && !strcmp(e->visit_reply->visit->note, "车主说了住址"));
	it_free(e);
	struct crmc *admin = it_login_demo("group_admin", NULL);
	CHECK(admin != NULL);
	if (!admin)
		return;
	Crm__CustomerErase ce = CRM__CUSTOMER_ERASE__INIT;
	ce.id = cid;
	ce.reason = (char *)"the customer asked";
	Crm__Envelope ereq = CRM__ENVELOPE__INIT;
	ereq.body_case = CRM__ENVELOPE__BODY_CUSTOMER_ERASE;
	ereq.customer_erase = &ce;
	e = it_call(admin, &ereq);
	CHECK(code_of(e) == CRM__CODE__OK);
	it_free(e);
	crmc_close(admin);
	CHECK(db_long("SELECT count(*) FROM crm.vehicles WHERE id = $1::uuid AND plate = ''"
		      " AND vin LIKE 'LSV%'", vid) == 1);
	CHECK(db_long("SELECT count(*) FROM crm.service_visits WHERE id = $1::uuid AND note = ''"
		      " AND amount = 990000 AND mileage = 3000", id) == 1);
}

/* crmd's timer: a crmd with service.daily_run_s = 1 (and no hour to wait
 * for) runs the daily job (reminders and value classes of every store) at
 * its own clock, now: the spend of SV02, all before T0, is older than 12
 * months by then, so its 20 value classes of T0 are gone, and the
 * reminders of SV01's cars, due long ago, are created. */
static void test_daily_timer(void)
{
	struct it_crmd d;
	const char *sets[] = {"service.daily_run_s=1", "service.daily_hour=-1", NULL};
	CHECK(db_long("SELECT count(*) FROM crm.value_classes vc JOIN crm.stores s"
		      " ON s.id = vc.store_id WHERE s.code = 'SV02'", NULL) == 20);
	CHECK(it_crmd_spawn(&d, sets, "event=service.daily "));
	CHECK(it_crmd_stop(&d));
	CHECK(db_long("SELECT count(*) FROM crm.value_classes vc JOIN crm.stores s"
		      " ON s.id = vc.store_id WHERE s.code = 'SV02'", NULL) == 0);
	CHECK(db_long("SELECT count(*) FROM crm.tasks t JOIN crm.stores s ON s.id = t.store_id"
		      " WHERE s.code = 'SV01' AND t.cadence_key LIKE 'svc/%'", NULL) >= 5);
}

int main(void)
{
	it_init();
	db = it_db();
	if (PQstatus(db) != CONNECTION_OK)
		return 1;
	CHECK(it_db_value(db, "INSERT INTO crm.stores (code, name, city, brand, group_id)"
			      " SELECT x.code, x.code || ' 售后', '北京', 'SvcTest', g.id"
			      " FROM crm.groups g, (VALUES ('SV01'), ('SV02'), ('SV03')) x (code)"
			      " ON CONFLICT (code) DO NOTHING RETURNING 1", NULL) != NULL ||
	      db_long("SELECT count(*) FROM crm.stores WHERE brand = 'SvcTest'", NULL) == 3);
	CHECK(it_add_user(db, "sv1.advisor", "售后一", "service_advisor", "SV01", PASSWORD));
	CHECK(it_add_user(db, "sv1.consultant", "销售一", "consultant", "SV01", PASSWORD));
	CHECK(it_add_user(db, "sv2.advisor", "售后二", "service_advisor", "SV02", PASSWORD));
	CHECK(it_add_user(db, "sv2.manager", "店长二", "store_manager", "SV02", PASSWORD));
	CHECK(it_add_user(db, "sv3.advisor", "售后三", "service_advisor", "SV03", PASSWORD));
	struct crmc *adv = login_user("sv1.advisor"), *sales = login_user("sv1.consultant");
	struct crmc *adv2 = login_user("sv2.advisor"), *mgr2 = login_user("sv2.manager");
	struct crmc *adv3 = login_user("sv3.advisor");
	if (!adv || !sales || !adv2 || !mgr2 || !adv3)
		return 1;
	test_vin_validation(adv);
	test_visits(adv, sales);
	test_scope(adv, adv2);
	test_base_classes(adv);
	test_reminders(adv3, "sv3.advisor");
	test_value_classes(adv2, mgr2, adv);
	test_erase(adv3);
	test_daily_timer();
	crmc_close(adv);
	crmc_close(sales);
	crmc_close(adv2);
	crmc_close(mgr2);
	crmc_close(adv3);
	PQfinish(db);
	return it_summary();
}
