/* Phone normalization, UUIDs and text field checks. */
#include <string.h>

#include "check.h"
#include "textcheck.h"

static void phone_is(const char *in, const char *want)
{
	char out[PHONE_CANONICAL_MAX], why[256] = "";
	bool ok = phone_normalize(in, out, why, sizeof why);
	if (!ok)
		fprintf(stderr, "  %s: %s\n", in, why);
	CHECK(ok);
	if (ok)
		CHECK_STR(out, want);
}

static void phone_refused(const char *in, const char *reason_part)
{
	char out[PHONE_CANONICAL_MAX], why[256] = "";
	CHECK(!phone_normalize(in, out, why, sizeof why));
	if (!strstr(why, reason_part)) {
		fprintf(stderr, "  %s: reason \"%s\" lacks \"%s\"\n", in, why, reason_part);
		CHECK(!"reason names the problem");
	}
}

static void test_mobiles_in_every_common_writing(void)
{
	phone_is("13812345678", "+8613812345678");
	phone_is("138 1234 5678", "+8613812345678");
	phone_is("138-1234-5678", "+8613812345678");
	phone_is("+86 138 1234 5678", "+8613812345678");
	phone_is("+86-13812345678", "+8613812345678");
	phone_is("0086 13812345678", "+8613812345678");
	phone_is("8613812345678", "+8613812345678");
	phone_is("(+86)13812345678", "+8613812345678");
	phone_is("１３８１２３４５６７８", "+8613812345678"); /* full-width digits */
	phone_is("＋86 199 0000 1111", "+8619900001111");
}

static void test_landlines_with_area_code(void)
{
	phone_is("010-62345678", "+861062345678");
	phone_is("(010) 8765 4321", "+861087654321");
	phone_is("021 55556666", "+862155556666");
	phone_is("0755-2345678", "+867552345678");
	phone_is("+86 10 62345678", "+861062345678");
	phone_is("0571 88889999", "+8657188889999");
}

static void test_wrong_phones_name_the_reason(void)
{
	phone_refused("", "required");
	phone_refused("   ", "required");
	phone_refused("12345", "11 digits");
	phone_refused("138123456789", "11 digits");
	phone_refused("12012345678", "13 to 19");
	phone_refused("+1 415 555 0100", "+86");
	phone_refused("138abc45678", "only digits");
	phone_refused("138'; DROP TABLE customers;--", "only digits");
	phone_refused("23456789", "not a Chinese phone number");
	phone_refused("010-123", "7 or 8 digit");
	phone_refused("010-02345678", "does not start with 0 or 1");
	phone_refused("010-12345678", "does not start with 0 or 1");
	phone_refused("1012345678", "not a Chinese phone number");
	phone_refused("\xff\xfe", "UTF-8");
	phone_refused("+86", "no number after the country code");
	phone_refused("0086", "no number after the country code");
	phone_refused("+86 ", "no number after the country code");
}

static void test_pasted_separators(void)
{
	phone_is("138\xc2\xa0" "1234\xc2\xa0" "5678", "+8613812345678");  /* no-break spaces */
	phone_is("138\xe2\x80\x93" "1234\xe2\x80\x93" "5678", "+8613812345678"); /* en dashes */
	phone_is("010\xe2\x80\x94" "62345678", "+861062345678");         /* em dash */
	phone_is("\xef\xbc\x8b" "86\xe3\x80\x80" "13812345678", "+8613812345678");
	phone_refused("138\xe2\x80\xa2" "12345678", "only digits");      /* a bullet is not a separator */
}

static void test_uuids(void)
{
	char id[37];
	uuid_v7_new(id);
	CHECK(strlen(id) == 36);
	CHECK(uuid_is_v7(id));
	char id2[37];
	uuid_v7_new(id2);
	CHECK(strcmp(id, id2) != 0);
	/* Time-ordered: a later id sorts after an earlier one (same ms aside). */
	CHECK(memcmp(id, id2, 8) <= 0);
	CHECK(!uuid_is_v7("0192f0c4-8a6e-4c3b-9d2e-1f2a3b4c5d6e")); /* version 4 */
	CHECK(uuid_is_v7("0192F0C4-8A6E-7C3B-9D2E-1F2A3B4C5D6E"));
	CHECK(!uuid_is_v7("0192f0c4-8a6e-7c3b-9d2e-1f2a3b4c5d6"));
	CHECK(!uuid_is_v7("0192f0c4x8a6e-7c3b-9d2e-1f2a3b4c5d6e"));
	CHECK(!uuid_is_v7("'; select 1; --"));
	uint8_t raw[16];
	CHECK(uuid_parse("00000000-0000-0000-0000-000000000000", raw));
}

static void test_text_fields(void)
{
	char why[256];
	CHECK(text_field_ok("name", "张伟", 100, true, why, sizeof why));
	CHECK(text_field_ok("name", "O'Brien \"Bob\"; DROP TABLE x;--", 100, true, why, sizeof why));
	CHECK(text_field_ok("name", "王芳 😀", 100, true, why, sizeof why));
	CHECK(!text_field_ok("name", "", 100, true, why, sizeof why));
	CHECK(strstr(why, "name is required") != NULL);
	CHECK(!text_field_ok("name", "　 ", 100, true, why, sizeof why)); /* ideographic space */
	CHECK(!text_field_ok("name", "a\tb", 100, true, why, sizeof why));
	CHECK(strstr(why, "control character") != NULL);
	CHECK(!text_field_ok("name", "\xe5\xbc", 100, true, why, sizeof why));
	CHECK(strstr(why, "UTF-8") != NULL);
	CHECK(!text_field_ok("name", "\xc0\xaf", 100, true, why, sizeof why)); /* overlong */
	CHECK(!text_field_ok("name", "\xed\xa0\x80", 100, true, why, sizeof why)); /* surrogate */
	char longname[400] = "";
	for (int i = 0; i < 101; i++)
		strcat(longname, "张");
	CHECK(!text_field_ok("name", longname, 100, true, why, sizeof why));
	CHECK(strstr(why, "longer than 100") != NULL);
	CHECK(utf8_chars("张伟abc") == 5);
}

int main(void)
{
	test_mobiles_in_every_common_writing();
	test_landlines_with_area_code();
	test_wrong_phones_name_the_reason();
	test_pasted_separators();
	test_uuids();
	test_text_fields();
	return check_summary();
}
