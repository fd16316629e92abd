/* Parsers of the values people type after crm's flags. Pure functions (no
 * I/O), so tests/unit/test_table.c can check them. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crm.h"

const char source_names[] = "walk_in, referral, online, auto_show, phone_in, roadshow, fleet, other";
const char age_band_names[] = "18-24, 25-34, 35-44, 45-54, 55+";
const char body_type_names[] = "sedan, suv, mpv, hatchback, wagon, coupe, pickup, other";
const char sort_names[] = "created, updated, name, last_contact, next_followup, level";

bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s || !*s)
		return false;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Reads exactly `n` digits. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

bool parse_local_time(const char *s, int64_t *ms, char *why, size_t whycap)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0;
	bool ok = digits(&p, 4, &y) && *p++ == '-' && digits(&p, 2, &mo) && *p++ == '-' &&
		  digits(&p, 2, &d);
	if (ok && (*p == ' ' || *p == 'T')) {
		p++;
		ok = digits(&p, 2, &h) && *p++ == ':' && digits(&p, 2, &mi);
	}
	if (!ok || *p) {
		snprintf(why, whycap, "\"%s\" is not a time: write YYYY-MM-DD HH:MM, e.g. 2026-11-20 14:30", s);
		return false;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59) {
		snprintf(why, whycap, "\"%s\" is not a valid date and time", s);
		return false;
	}
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_isdst = -1;
	time_t t = mktime(&tm);
	/* mktime moves 2026-02-31 to March: such a day does not exist. */
	if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1) {
		snprintf(why, whycap, "\"%s\" is not a valid date and time", s);
		return false;
	}
	*ms = (int64_t)t * 1000;
	return true;
}

bool parse_yuan(const char *s, uint32_t *out, char *why, size_t whycap)
{
	const char *p = s;
	uint64_t whole = 0, frac = 0, frac_div = 1;
	bool any = false;
	for (; *p >= '0' && *p <= '9'; p++, any = true) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > UINT32_MAX)
			goto bad;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, any = true) {
			if (frac_div < 1000000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_div *= 10;
			}
		}
	}
	if (!any)
		goto bad;
	uint64_t unit = 1;
	if (!strcmp(p, "万") || !strcasecmp(p, "w"))
		unit = 10000;
	else if (!strcasecmp(p, "k") || !strcmp(p, "千"))
		unit = 1000;
	else if (!strcmp(p, "元") || !*p)
		unit = 1;
	else
		goto bad;
	uint64_t v = whole * unit + frac * unit / frac_div;
	if (v > UINT32_MAX)
		goto bad;
	*out = (uint32_t)v;
	return true;
bad:
	snprintf(why, whycap, "budget \"%s\" is not an amount in yuan (e.g. 250000, 25万, 250k)", s);
	return false;
}

bool parse_intent(char *spec, Crm__Intent *out, char *why, size_t whycap)
{
	crm__intent__init(out);
	char *parts[4] = {spec, NULL, NULL, NULL};
	/* The configuration is the rest of the text, colons and all. */
	for (int k = 1; k < 4; k++) {
		char *colon = strchr(parts[k - 1], ':');
		if (!colon)
			break;
		*colon = '\0';
		parts[k] = colon + 1;
	}
	if (!*parts[0]) {
		snprintf(why, whycap, "intent: the model comes first (MODEL[:BODY_TYPE[:BUDGET_MIN-BUDGET_MAX[:CONFIG]]])");
		return false;
	}
	out->model = parts[0];
	if (parts[1] && *parts[1]) {
		const char *bt = parse_body_type(parts[1]);
		if (!bt) {
			snprintf(why, whycap, "intent: unknown body type \"%s\" (one of %s)", parts[1],
				 body_type_names);
			return false;
		}
		out->body_type = (char *)bt;
	}
	if (parts[2] && *parts[2]) {
		char *dash = strchr(parts[2], '-');
		char *lo = parts[2], *hi = NULL;
		if (dash) {
			*dash = '\0';
			hi = dash + 1;
		}
		if (*lo && !parse_yuan(lo, &out->budget_min, why, whycap))
			return false;
		if (!dash)
			out->budget_max = out->budget_min;
		else if (*hi && !parse_yuan(hi, &out->budget_max, why, whycap))
			return false;
		if (out->budget_max && out->budget_max < out->budget_min) {
			snprintf(why, whycap, "intent: the budget's upper end (%u) is below its lower end (%u)",
				 out->budget_max, out->budget_min);
			return false;
		}
	}
	if (parts[3])
		out->configuration = parts[3];
	return true;
}

/* `s` matches one of the space-separated words of `set` (case ignored, "-"
 * taken as "_"): returns the word from a static copy. */
static const char *pick(const char *s, const char *const *set)
{
	if (!s)
		return NULL;
	for (size_t i = 0; set[i]; i++) {
		const char *a = s, *b = set[i];
		for (; *a && *b; a++, b++) {
			char ca = (char)tolower((unsigned char)*a), cb = *b;
			if (ca == '-' && cb == '_')
				continue;
			if (ca != cb)
				break;
		}
		if (!*a && !*b)
			return set[i];
	}
	return NULL;
}

const char *parse_level(const char *s, const char *allowed)
{
	if (!s || !s[0] || s[1])
		return NULL;
	static const char *const levels[] = {"H", "A", "B", "C", "N", "O", "D", "T"};
	char up = (char)toupper((unsigned char)s[0]);
	if (!strchr(allowed, up))
		return NULL;
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
		if (levels[i][0] == up)
			return levels[i];
	return NULL;
}

const char *parse_source(const char *s)
{
	static const char *const set[] = {"walk_in", "referral", "online", "auto_show",
					  "phone_in", "roadshow", "fleet", "other", NULL};
	return pick(s, set);
}

const char *parse_gender(const char *s)
{
	static const char *const set[] = {"male", "female", NULL};
	if (s && !strcmp(s, "男"))
		return set[0];
	if (s && !strcmp(s, "女"))
		return set[1];
	return pick(s, set);
}

const char *parse_age_band(const char *s)
{
	static const char *const set[] = {"18-24", "25-34", "35-44", "45-54", "55+", NULL};
	for (size_t i = 0; s && set[i]; i++)
		if (!strcmp(s, set[i]))
			return set[i];
	return NULL;
}

const char *parse_body_type(const char *s)
{
	static const char *const set[] = {"sedan", "suv", "mpv", "hatchback", "wagon",
					  "coupe", "pickup", "other", NULL};
	return pick(s, set);
}

const char *parse_status(const char *s)
{
	static const char *const set[] = {"active", "dormant", "closed", NULL};
	return pick(s, set);
}

const char *parse_sort(const char *s)
{
	static const char *const set[] = {"created", "updated", "name", "last_contact",
					  "next_followup", "level", NULL};
	return pick(s, set);
}
