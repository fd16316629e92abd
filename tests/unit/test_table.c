/* Unit tests of crm's pure pieces: display width and truncation of Chinese
 * text, table alignment, column lists, and the parsers of flag values.
 * The crm sources are compiled in directly: crm is an executable, not a
 * library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#include "../../client/crm/card.c"
#include "../../client/crm/parse.c"
#include "../../client/crm/table.c"
#include "textcheck.h"

static void test_width_counts_cjk_as_two(void)
{
	CHECK(text_width("") == 0);
	CHECK(text_width("abc") == 3);
	CHECK(text_width("张伟") == 4);
	CHECK(text_width("张a伟") == 5);
	CHECK(text_width("途观L") == 5);
	CHECK(text_width("\xff") == 1); /* a stray byte still takes a column */
}

static void test_truncate_never_splits_a_character(void)
{
	char out[64];
	text_truncate("张伟", 4, out, sizeof out);
	CHECK_STR(out, "张伟");
	text_truncate("张伟明", 5, out, sizeof out);
	CHECK_STR(out, "张伟…");
	text_truncate("张伟明", 4, out, sizeof out);
	CHECK_STR(out, "张…"); /* 张伟 and … would be 5 columns */
	CHECK(text_width(out) <= 4);
	text_truncate("abcdef", 4, out, sizeof out);
	CHECK_STR(out, "abc…");
	text_truncate("abc", 0, out, sizeof out);
	CHECK_STR(out, "");
	/* A buffer too small for the whole text cuts at a character boundary. */
	char small[8];
	text_truncate("张伟明张伟明", 40, small, sizeof small);
	CHECK(utf8_valid(small, strlen(small)));
	CHECK(strlen(small) < sizeof small);
}

/* Prints a table into memory and returns it (caller frees). */
static char *render(struct table *t, bool tsv)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (tsv) {
		table_print_tsv_header(t, f);
		table_print_tsv_rows(t, f);
	} else {
		table_fit(t);
		table_print_header(t, f, "");
		table_print_rows(t, f, "");
	}
	fclose(f);
	return buf;
}

/* The display column at which `needle` starts in `line`. */
static int column_of(const char *line, const char *needle)
{
	const char *p = strstr(line, needle);
	if (!p)
		return -1;
	char prefix[512];
	snprintf(prefix, sizeof prefix, "%.*s", (int)(p - line), line);
	return text_width(prefix);
}

static void test_table_aligns_by_display_width(void)
{
	static const char *const heads[] = {"name", "phone", "level"};
	struct table t;
	CHECK(table_init(&t, 3, heads));
	const char *r1[] = {"张伟", "+8613800000001", "A"};
	const char *r2[] = {"Li Na", "+8613800000002", "B"};
	const char *r3[] = {"欧阳娜娜", "+8613800000003", "H"};
	table_add(&t, r1);
	table_add(&t, r2);
	table_add(&t, r3);
	char *out = render(&t, false);
	char *lines[4] = {0};
	int n = 0;
	for (char *save, *l = strtok_r(out, "\n", &save); l && n < 4; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	CHECK(n == 4);
	if (n == 4) {
		int phone_col = column_of(lines[0], "phone");
		int level_col = column_of(lines[0], "level");
		CHECK(phone_col == 10); /* 欧阳娜娜 is 8 wide, then two spaces */
		CHECK(column_of(lines[1], "+86138") == phone_col);
		CHECK(column_of(lines[2], "+86138") == phone_col);
		CHECK(column_of(lines[3], "+86138") == phone_col);
		CHECK(column_of(lines[1], " A") + 1 == level_col);
		CHECK(column_of(lines[3], " H") + 1 == level_col);
	}
	free(out);
	table_free(&t);
}

static void test_table_cuts_cells_past_the_limit(void)
{
	static const char *const heads[] = {"name", "x"};
	struct table t;
	CHECK(table_init(&t, 2, heads));
	t.max_widths[0] = 6;
	const char *r1[] = {"欧阳娜娜娜娜", "1"};
	table_add(&t, r1);
	char *out = render(&t, false);
	CHECK(strstr(out, "欧阳…   1") != NULL); /* 5 wide, padded to 6 */
	free(out);
	table_free(&t);
}

static void test_tsv_keeps_cells_whole_and_one_line(void)
{
	static const char *const heads[] = {"name", "tags"};
	struct table t;
	CHECK(table_init(&t, 2, heads));
	const char *r1[] = {"欧阳娜娜娜娜娜娜娜娜", "a\tb"};
	table_add(&t, r1);
	char *out = render(&t, true);
	CHECK_STR(out, "name\ttags\n欧阳娜娜娜娜娜娜娜娜\ta b\n");
	free(out);
	table_free(&t);
}

static void test_columns_parse(void)
{
	enum list_column cols[LIST_MAX_COLUMNS];
	int n;
	char why[1024];
	CHECK(columns_parse(list_default_columns, cols, &n, why, sizeof why));
	CHECK(n == 7 && cols[0] == COL_NAME && cols[6] == COL_LAST_CONTACT);
	CHECK(columns_parse("id,relation_id,version", cols, &n, why, sizeof why));
	CHECK(n == 3 && cols[1] == COL_RELATION_ID);
	CHECK(!columns_parse("name,bogus", cols, &n, why, sizeof why));
	CHECK(strstr(why, "\"bogus\"") && strstr(why, "next_followup") && strstr(why, "relation_id"));
	CHECK(!columns_parse("name,,phone", cols, &n, why, sizeof why));
	CHECK(!columns_parse("", cols, &n, why, sizeof why));
	CHECK(!columns_parse("Name", cols, &n, why, sizeof why));
}

static void test_local_time(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
	int64_t ms = 0;
	char why[256];
	CHECK(parse_local_time("2026-11-20 10:30", &ms, why, sizeof why));
	CHECK(ms == 1795170600000LL);
	CHECK(parse_local_time("2026-11-20T10:30", &ms, why, sizeof why));
	CHECK(ms == 1795170600000LL);
	CHECK(parse_local_time("2026-11-20", &ms, why, sizeof why));
	CHECK(ms == 1795132800000LL);
	CHECK(!parse_local_time("2026-02-30", &ms, why, sizeof why));
	CHECK(!parse_local_time("2026-11-20 25:00", &ms, why, sizeof why));
	CHECK(!parse_local_time("20261120", &ms, why, sizeof why));
	CHECK(!parse_local_time("2026-11-20 10:30:00", &ms, why, sizeof why));
	CHECK(strstr(why, "YYYY-MM-DD HH:MM") != NULL);
	/* Local means local: 18:30 in Beijing (UTC+8, where zone data is
	 * installed) is 10:30 UTC. */
	if (access("/usr/share/zoneinfo/Asia/Shanghai", R_OK) == 0) {
		setenv("TZ", "Asia/Shanghai", 1);
		tzset();
		CHECK(parse_local_time("2026-11-20 18:30", &ms, why, sizeof why));
		CHECK(ms == 1795170600000LL);
	}
	unsetenv("TZ");
	tzset();
}

static void test_yuan(void)
{
	uint32_t v = 0;
	char why[256];
	CHECK(parse_yuan("250000", &v, why, sizeof why) && v == 250000);
	CHECK(parse_yuan("25万", &v, why, sizeof why) && v == 250000);
	CHECK(parse_yuan("25.5万", &v, why, sizeof why) && v == 255000);
	CHECK(parse_yuan("25w", &v, why, sizeof why) && v == 250000);
	CHECK(parse_yuan("250k", &v, why, sizeof why) && v == 250000);
	CHECK(!parse_yuan("abc", &v, why, sizeof why));
	CHECK(!parse_yuan("", &v, why, sizeof why));
	CHECK(!parse_yuan("25 万", &v, why, sizeof why));
	CHECK(!parse_yuan("5000000000", &v, why, sizeof why));
	CHECK(!parse_yuan("500000万", &v, why, sizeof why));
}

static void test_intent(void)
{
	Crm__Intent in;
	char why[256];
	char s1[] = "途观L:suv:20万-30万:两驱豪华版:黑色";
	CHECK(parse_intent(s1, &in, why, sizeof why));
	CHECK_STR(in.model, "途观L");
	CHECK_STR(in.body_type, "suv");
	CHECK(in.budget_min == 200000 && in.budget_max == 300000);
	CHECK_STR(in.configuration, "两驱豪华版:黑色");
	char s2[] = "A4L";
	CHECK(parse_intent(s2, &in, why, sizeof why));
	CHECK_STR(in.model, "A4L");
	CHECK_STR(in.body_type, "");
	CHECK(in.budget_min == 0 && in.budget_max == 0);
	char s3[] = "A4L::25万";
	CHECK(parse_intent(s3, &in, why, sizeof why));
	CHECK(in.budget_min == 250000 && in.budget_max == 250000);
	char s4[] = "A4L:SEDAN:-30万";
	CHECK(parse_intent(s4, &in, why, sizeof why));
	CHECK_STR(in.body_type, "sedan");
	CHECK(in.budget_min == 0 && in.budget_max == 300000);
	char s5[] = "A4L:truck";
	CHECK(!parse_intent(s5, &in, why, sizeof why));
	CHECK(strstr(why, "truck") && strstr(why, "pickup"));
	char s6[] = "A4L::30万-20万";
	CHECK(!parse_intent(s6, &in, why, sizeof why));
	char s7[] = ":suv";
	CHECK(!parse_intent(s7, &in, why, sizeof why));
}

static void test_value_sets(void)
{
	CHECK_STR(parse_level("a", "HABC"), "A");
	CHECK(parse_level("N", "HABC") == NULL);
	CHECK(parse_level("AB", "HABC") == NULL);
	CHECK_STR(parse_level("t", "HABCNODT"), "T");
	CHECK_STR(parse_source("walk-in"), "walk_in");
	CHECK_STR(parse_source("Auto_Show"), "auto_show");
	CHECK(parse_source("walkin") == NULL);
	CHECK_STR(parse_gender("女"), "female");
	CHECK_STR(parse_gender("MALE"), "male");
	CHECK(parse_gender("m") == NULL);
	CHECK_STR(parse_age_band("55+"), "55+");
	CHECK(parse_age_band("30-40") == NULL);
	CHECK_STR(parse_sort("last-contact"), "last_contact");
	CHECK(parse_sort("phone") == NULL);
	CHECK_STR(parse_status("Dormant"), "dormant");
	uint64_t v;
	CHECK(parse_uint("42", 1, 100, &v) && v == 42);
	CHECK(!parse_uint("0", 1, 100, &v));
	CHECK(!parse_uint("-1", 0, 100, &v));
	CHECK(!parse_uint("99999999999999999999999", 0, UINT64_MAX, &v));
}

static void test_budget_format(void)
{
	char out[64];
	format_budget(200000, 300000, out, sizeof out);
	CHECK_STR(out, "20万-30万");
	format_budget(255000, 255000, out, sizeof out);
	CHECK_STR(out, "25.5万");
	format_budget(0, 300000, out, sizeof out);
	CHECK_STR(out, "≤30万");
	format_budget(150000, 0, out, sizeof out);
	CHECK_STR(out, "≥15万");
	format_budget(0, 0, out, sizeof out);
	CHECK_STR(out, "");
	format_budget(8500, 9999, out, sizeof out);
	CHECK_STR(out, "8500-9999");
}

int main(void)
{
	test_width_counts_cjk_as_two();
	test_truncate_never_splits_a_character();
	test_table_aligns_by_display_width();
	test_table_cuts_cells_past_the_limit();
	test_tsv_keeps_cells_whole_and_one_line();
	test_columns_parse();
	test_local_time();
	test_yuan();
	test_intent();
	test_value_sets();
	test_budget_format();
	return check_summary();
}
