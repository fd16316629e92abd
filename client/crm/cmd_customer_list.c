/* crm customer list and crm customer search: a streamed CustomerList,
 * printed as a table aligned by display width (on a terminal), as
 * tab-separated lines (otherwise), or as one JSON document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crm.h"
#include "pbjson.h"

#define LIST_FILTERS                                                                              \
	"       [--level H,A,...] [--source walk_in,...] [--model MODEL] [--owner USER] [--tag TAG]\n" \
	"       [--important] [--contacted-within DAYS] [--overdue] [--store CODE] [--name NAME]\n"   \
	"       [--name-match exact|prefix|fuzzy] [--phone PHONE]\n"                                 \
	"       [--sort created|updated|name|last_contact|next_followup|level] [--desc]\n"            \
	"       [--limit N] [--after CURSOR] [--columns C1,C2,...] [--format table|tsv]\n"            \
	"  Columns: id, name, phone, gender, level, source, owner, owner_name, store, model,\n"       \
	"  budget, region, tags, important, last_contact, next_followup, created, relation_id,\n"     \
	"  version, relation_version (default name,phone,level,source,owner,model,last_contact)."

const char customer_list_usage[] = "crm customer list\n" LIST_FILTERS;
const char customer_search_usage[] =
	"crm customer search TEXT (a phone, its last 4+ digits, or a name)\n" LIST_FILTERS;

#define LIST_PAGE_SIZE 100
#define LIST_INITIAL_CREDIT 4
#define LIST_MAX_VALUES 8
#define LIST_MAX_CELL_WIDTH 40  /* display columns, on a terminal */

struct list_opts {
	Crm__CustomerList cl;
	char *levels[LIST_MAX_VALUES];
	char *sources[LIST_MAX_VALUES];
	enum list_column cols[LIST_MAX_COLUMNS];
	int ncols;
	enum { FORMAT_AUTO, FORMAT_TABLE, FORMAT_TSV } format;
};

/* Splits a comma list in place into canonical values; false after a usage
 * error naming the bad item. */
static int split_values(const struct cli *cli, const char *u, const char *opt, char *list,
			char **out, size_t *n, const char *(*canon)(const char *), const char *valid)
{
	for (char *item = list, *next; item; item = next) {
		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		if (!*item)
			continue;
		const char *v = canon(item);
		if (!v)
			return cli_usage(cli, u, "%s: unknown value \"%s\" (valid: %s)", opt, item, valid);
		if (*n == LIST_MAX_VALUES)
			return cli_usage(cli, u, "%s: at most %d values", opt, LIST_MAX_VALUES);
		out[(*n)++] = (char *)v;
	}
	return EXIT_OK;
}

static const char *any_level(const char *s) { return parse_level(s, "HABCNODT"); }

static int parse_list_args(const struct cli *cli, const char *u, int argc, char **argv,
			   bool search, struct list_opts *o)
{
	Crm__CustomerList *cl = &o->cl;
	const char *columns = list_default_columns;
	char why[1024];
	uint64_t n;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		int rc;
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--important")) {
			cl->important_only = true;
			continue;
		}
		if (!strcmp(a, "--overdue")) {
			cl->followup_overdue = true;
			continue;
		}
		if (!strcmp(a, "--desc")) {
			cl->descending = true;
			continue;
		}
		if (a[0] != '-' || !a[1]) {
			if (!search)
				return cli_usage(cli, u, "customer list: unexpected argument %s "
						 "(to search, use crm customer search TEXT)", a);
			if (*cl->text)
				return cli_usage(cli, u, "customer search: one search text; put words "
						 "with spaces in quotes");
			cl->text = (char *)a;
			continue;
		}
		static const char *const with_value[] = {
			"--level", "--source", "--model", "--owner", "--tag", "--contacted-within",
			"--store", "--sort", "--limit", "--after", "--columns", "--format", "--name",
			"--name-match", "--phone", NULL};
		size_t k = 0;
		while (with_value[k] && strcmp(a, with_value[k]))
			k++;
		if (!with_value[k])
			return cli_usage(cli, u, "unknown option %s", a);
		if ((rc = cli_opt_value(cli, u, argc, argv, &i, &v)) != EXIT_OK)
			return rc;
		if (!strcmp(a, "--level")) {
			rc = split_values(cli, u, a, argv[i], o->levels, &cl->n_levels, any_level,
					  "H, A, B, C, N, O, D, T");
		} else if (!strcmp(a, "--source")) {
			rc = split_values(cli, u, a, argv[i], o->sources, &cl->n_sources, parse_source,
					  source_names);
		} else if (!strcmp(a, "--model")) {
			cl->model = (char *)v;
		} else if (!strcmp(a, "--owner")) {
			cl->owner = (char *)v;
		} else if (!strcmp(a, "--tag")) {
			cl->tag = (char *)v;
		} else if (!strcmp(a, "--store")) {
			cl->store_code = (char *)v;
		} else if (!strcmp(a, "--after")) {
			cl->after = (char *)v;
		} else if (!strcmp(a, "--name")) {
			cl->name = (char *)v;
		} else if (!strcmp(a, "--phone")) {
			cl->phone = (char *)v;
		} else if (!strcmp(a, "--columns")) {
			columns = v;
		} else if (!strcmp(a, "--contacted-within")) {
			if (!parse_uint(v, 1, 3650, &n))
				return cli_usage(cli, u, "--contacted-within takes a number of days (1 to 3650)");
			cl->contacted_within_days = (uint32_t)n;
		} else if (!strcmp(a, "--limit")) {
			if (!parse_uint(v, 0, UINT32_MAX, &n))
				return cli_usage(cli, u, "--limit takes a whole number (0: no limit)");
			cl->limit = (uint32_t)n;
		} else if (!strcmp(a, "--sort")) {
			if (!(cl->sort = (char *)parse_sort(v)))
				return cli_usage(cli, u, "--sort \"%s\": sort by one of %s", v, sort_names);
		} else if (!strcmp(a, "--name-match")) {
			if (strcmp(v, "exact") && strcmp(v, "prefix") && strcmp(v, "fuzzy"))
				return cli_usage(cli, u, "--name-match \"%s\": give exact, prefix or fuzzy", v);
			cl->name_match = (char *)v;
		} else if (!strcmp(a, "--format")) {
			if (!strcmp(v, "table"))
				o->format = FORMAT_TABLE;
			else if (!strcmp(v, "tsv"))
				o->format = FORMAT_TSV;
			else
				return cli_usage(cli, u, "--format \"%s\": give table or tsv", v);
		}
		if (rc != EXIT_OK)
			return rc;
	}
	if (search && (!cl->text || !*cl->text))
		return cli_usage(cli, u, "customer search: give the text to search for");
	if (!columns_parse(columns, o->cols, &o->ncols, why, sizeof why))
		return cli_usage(cli, u, "--columns: %s", why);
	return EXIT_OK;
}

/* One cell of a row; `tsv` keeps empty values empty for scripts. */
static void row_cell(const Crm__Customer *cu, const Crm__Relation *rel, enum list_column col,
		     bool tsv, char *out, size_t cap)
{
	const Crm__Intent *intent = rel && rel->n_intents ? rel->intents[0] : NULL;
	const char *s = "";
	int64_t when = -1;
	out[0] = '\0';
	switch (col) {
	case COL_ID: s = cu->id; break;
	case COL_NAME: s = cu->name; break;
	case COL_PHONE: s = cu->phone; break;
	case COL_GENDER: s = cu->gender; break;
	case COL_LEVEL: s = rel ? rel->level : ""; break;
	case COL_SOURCE: s = rel ? rel->source : ""; break;
	case COL_OWNER: s = rel ? rel->owner : ""; break;
	case COL_OWNER_NAME: s = rel ? rel->owner_name : ""; break;
	case COL_STORE: s = rel ? rel->store_code : cu->store_code; break;
	case COL_MODEL: s = intent ? intent->model : ""; break;
	case COL_BUDGET:
		if (intent)
			format_budget(intent->budget_min, intent->budget_max, out, cap);
		return;
	case COL_REGION: s = cu->region; break;
	case COL_TAGS: {
		size_t used = 0;
		for (size_t i = 0; i < cu->n_tags && used < cap; i++)
			used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", cu->tags[i]);
		return;
	}
	case COL_IMPORTANT: s = cu->important ? "yes" : tsv ? "no" : ""; break;
	case COL_LAST_CONTACT: when = rel ? rel->last_contact_at : 0; break;
	case COL_NEXT_FOLLOWUP: when = rel ? rel->next_followup_at : 0; break;
	case COL_CREATED: when = rel && rel->created_at ? rel->created_at : cu->created_at; break;
	case COL_RELATION_ID: s = rel ? rel->id : ""; break;
	case COL_VERSION: snprintf(out, cap, "%llu", (unsigned long long)cu->version); return;
	case COL_RELATION_VERSION:
		if (rel)
			snprintf(out, cap, "%llu", (unsigned long long)rel->version);
		return;
	case COL__COUNT: break;
	}
	if (when >= 0) {
		if (when > 0 || !tsv)
			format_ms(when, out, cap);
		return;
	}
	snprintf(out, cap, "%s", s ? s : "");
}

/* The narrowest a column may be when later pages must fit the widths the
 * first page set; wider cells are cut with "…". */
static int column_floor(enum list_column c)
{
	switch (c) {
	case COL_ID: case COL_RELATION_ID: return 36;
	case COL_NAME: return 12;
	case COL_PHONE: return 14;
	case COL_OWNER: return 16;
	case COL_MODEL: case COL_REGION: case COL_BUDGET: return 12;
	case COL_TAGS: return 16;
	case COL_LAST_CONTACT: case COL_NEXT_FOLLOWUP: case COL_CREATED: return 16;
	case COL_SOURCE: return 9;
	default: return 0;
	}
}

/* Where a page goes: buffered into `t` for a table or TSV, or straight out
 * as JSON. */
struct list_out {
	const struct cli *cli;
	struct list_opts *o;
	struct table t;
	bool tsv, header_done, first_json, json_open, oom;
	uint64_t rows;
	char *next_cursor;
};

static void emit_row(struct list_out *lo, const Crm__Customer *cu, const Crm__Relation *rel,
		     const Crm__CustomerRow *row)
{
	lo->rows++;
	if (lo->cli->json) {
		Crm__CustomerRow tmp = CRM__CUSTOMER_ROW__INIT;
		if (!row) {
			tmp.customer = (Crm__Customer *)cu;
			row = &tmp;
		}
		printf(lo->first_json ? "\n    " : ",\n    ");
		pbjson_print(stdout, &row->base, 2);
		lo->first_json = false;
		return;
	}
	char bufs[LIST_MAX_COLUMNS][1024];
	const char *cells[LIST_MAX_COLUMNS];
	for (int c = 0; c < lo->o->ncols; c++) {
		row_cell(cu, rel, lo->o->cols[c], lo->tsv, bufs[c], sizeof bufs[c]);
		cells[c] = bufs[c];
	}
	if (!table_add(&lo->t, cells))
		lo->oom = true;
}

static void flush_page(struct list_out *lo, bool more)
{
	if (lo->cli->json)
		return;
	if (lo->tsv) {
		if (!lo->header_done)
			table_print_tsv_header(&lo->t, stdout);
		table_print_tsv_rows(&lo->t, stdout);
	} else {
		if (!lo->header_done) {
			/* A list of one page is sized exactly; otherwise the
			 * widths must also hold the pages still to come. */
			if (more)
				for (int c = 0; c < lo->t.ncols; c++) {
					int f = column_floor(lo->o->cols[c]);
					if (f > lo->t.widths[c])
						lo->t.widths[c] = f;
				}
			table_fit(&lo->t);
			table_print_header(&lo->t, stdout, "");
		}
		table_print_rows(&lo->t, stdout, "");
	}
	lo->header_done = true;
	table_clear_rows(&lo->t);
	fflush(stdout);
}

static void json_open(struct list_out *lo)
{
	if (lo->cli->json && !lo->json_open)
		printf("{\n  \"rows\": [");
	lo->json_open = true;
}

/* Ends the output; an error that ends the list early goes into the JSON
 * document (and to stderr), so that the output stays one document. */
static int list_end(struct list_out *lo, const Crm__Envelope *err_resp, int rc, const char *err)
{
	const struct cli *cli = lo->cli;
	struct cli quiet = *cli;
	quiet.json = false;
	if (cli->json && !lo->json_open) {
		/* Nothing printed yet: the error is the whole document. */
		if (err_resp)
			return cli_fail_response(cli, err_resp);
		if (err)
			return cli_fail(cli, rc, "UNAVAILABLE", NULL, "%s", err);
		json_open(lo);
	}
	if (err_resp)
		rc = cli_fail_response(&quiet, err_resp);
	else if (err)
		rc = cli_fail(&quiet, rc, "UNAVAILABLE", NULL, "%s", err);
	if (cli->json) {
		printf("%s],\n  \"next_cursor\": ", lo->first_json ? "" : "\n  ");
		pbjson_string(stdout, lo->next_cursor ? lo->next_cursor : "");
		if (err_resp || err) {
			Crm__Code code = err_resp ? crmc_status(err_resp) : CRM__CODE__UNAVAILABLE;
			printf(",\n  \"error\": {\"code\": ");
			pbjson_string(stdout, crmc_code_name(code));
			printf(", \"message\": ");
			pbjson_string(stdout, err_resp ? crmc_status_message(err_resp) : err);
			printf("}");
		}
		printf("\n}\n");
	} else if (!lo->header_done && !err_resp && !err) {
		flush_page(lo, false);
	}
	return rc;
}

static void cancel_stream(struct cli *cli, uint64_t id)
{
	Crm__StreamCancel sc = CRM__STREAM_CANCEL__INIT;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.id = id;
	req.body_case = CRM__ENVELOPE__BODY_STREAM_CANCEL;
	req.stream_cancel = &sc;
	crmc_send(cli->conn, &req);
	crmc_flush(cli->conn);
}

/* Streams pages, granting credit as they are printed, so neither side holds
 * more than a few pages whatever the size of the list. */
int customer_list(struct cli *cli, int argc, char **argv, const char *u, bool search)
{
	struct list_opts o;
	memset(&o, 0, sizeof o);
	crm__customer_list__init(&o.cl);
	o.cl.levels = o.levels;
	o.cl.sources = o.sources;
	int rc = parse_list_args(cli, u, argc, argv, search, &o);
	if (rc != EXIT_OK || (rc = cli_connect_session(cli)) != EXIT_OK)
		return rc;

	struct list_out lo = {.cli = cli, .o = &o, .first_json = true};
	lo.tsv = o.format == FORMAT_TSV || (o.format == FORMAT_AUTO && !isatty(STDOUT_FILENO));
	const char *heads[LIST_MAX_COLUMNS];
	for (int c = 0; c < o.ncols; c++)
		heads[c] = list_column_names[o.cols[c]];
	if (!table_init(&lo.t, o.ncols, heads))
		return cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL, "out of memory");
	/* One long name or tag list must not push the rest off the screen. */
	for (int c = 0; c < o.ncols; c++)
		lo.t.max_widths[c] = LIST_MAX_CELL_WIDTH;

	o.cl.page_size = LIST_PAGE_SIZE;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_CUSTOMER_LIST;
	req.customer_list = &o.cl;
	req.credit = LIST_INITIAL_CREDIT;
	uint64_t id = crmc_send(cli->conn, &req);
	for (;;) {
		char err[512], msg[600];
		Crm__Envelope *resp = crmc_wait(cli->conn, id, 30000, err, sizeof err);
		if (!resp) {
			snprintf(msg, sizeof msg, "lost the server: %s", err);
			rc = list_end(&lo, NULL, EXIT_UNAVAILABLE, msg);
			break;
		}
		if (crmc_status(resp) == CRM__CODE__OK &&
		    (resp->body_case != CRM__ENVELOPE__BODY_CUSTOMER_PAGE || !resp->customer_page)) {
			rc = cli_unexpected(cli, resp);
			crm__envelope__free_unpacked(resp, NULL);
			break;
		}
		if (crmc_status(resp) != CRM__CODE__OK) {
			rc = list_end(&lo, resp, EXIT_OTHER, NULL);
			crm__envelope__free_unpacked(resp, NULL);
			break;
		}
		json_open(&lo);
		const Crm__CustomerPage *page = resp->customer_page;
		for (size_t k = 0; k < page->n_rows; k++)
			if (page->rows[k]->customer)
				emit_row(&lo, page->rows[k]->customer, page->rows[k]->relation,
					 page->rows[k]);
		/* A server from before CustomerRow sends bare customers. */
		for (size_t k = 0; !page->n_rows && k < page->n_customers; k++)
			emit_row(&lo, page->customers[k], NULL, NULL);
		bool more = resp->more;
		if (page->next_cursor && *page->next_cursor) {
			free(lo.next_cursor);
			lo.next_cursor = strdup(page->next_cursor);
		}
		crm__envelope__free_unpacked(resp, NULL);
		if (lo.oom) {
			if (more)
				cancel_stream(cli, id);
			rc = cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL, "out of memory");
			break;
		}
		flush_page(&lo, more);
		if (ferror(stdout)) {
			/* The reader went away (crm ... | head): stop the stream. */
			if (more)
				cancel_stream(cli, id);
			rc = EXIT_OTHER;
			break;
		}
		if (!more) {
			list_end(&lo, NULL, EXIT_OK, NULL);
			if (!cli->json && o.cl.limit && lo.rows >= o.cl.limit && lo.next_cursor &&
			    isatty(STDERR_FILENO))
				fprintf(stderr, "crm: stopped after %llu rows (--limit); continue with "
					"--after %s\n", (unsigned long long)lo.rows, lo.next_cursor);
			break;
		}
		crmc_stream_credit(cli->conn, id, 1);
	}
	table_free(&lo.t);
	free(lo.next_cursor);
	return rc;
}
