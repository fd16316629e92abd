#include "textcheck.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

/* Reads one code point; returns its length or 0 for invalid UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	if (len == 0)
		return 0;
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t n;
	uint32_t v, min;
	if ((c & 0xe0) == 0xc0) {
		n = 2; v = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3; v = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4; v = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	while (len > 0) {
		uint32_t cp;
		size_t n = utf8_decode(p, len, &cp);
		if (n == 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

bool text_field_ok(const char *field, const char *s, size_t max_chars, bool required,
		   char *why, size_t whycap)
{
	size_t len = strlen(s);
	if (!utf8_valid(s, len)) {
		snprintf(why, whycap, "%s is not valid UTF-8 text", field);
		return false;
	}
	const unsigned char *p = (const unsigned char *)s;
	bool blank = true;
	size_t chars = 0;
	while (*p) {
		uint32_t cp;
		size_t n = utf8_decode(p, strlen((const char *)p), &cp);
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
			snprintf(why, whycap, "%s contains a control character (U+%04X)", field, cp);
			return false;
		}
		if (cp != ' ' && cp != 0x3000)
			blank = false;
		chars++;
		p += n;
	}
	if (required && blank) {
		snprintf(why, whycap, "%s is required", field);
		return false;
	}
	if (chars > max_chars) {
		snprintf(why, whycap, "%s is longer than %zu characters (%zu)", field, max_chars, chars);
		return false;
	}
	return true;
}

bool phone_normalize(const char *in, char out[PHONE_CANONICAL_MAX], char *why, size_t whycap)
{
	char digits[32];
	size_t nd = 0;
	bool plus = false;
	const unsigned char *p = (const unsigned char *)in;
	size_t len = strlen(in);
	if (!utf8_valid(in, len)) {
		snprintf(why, whycap, "phone is not valid UTF-8 text");
		return false;
	}
	while (*p) {
		uint32_t cp;
		size_t n = utf8_decode(p, strlen((const char *)p), &cp);
		p += n;
		if (cp >= 0xff10 && cp <= 0xff19) /* full-width digits */
			cp = '0' + (cp - 0xff10);
		else if (cp == 0xff0b)
			cp = '+';
		if (cp >= '0' && cp <= '9') {
			if (nd + 1 >= sizeof digits) {
				snprintf(why, whycap, "phone has too many digits");
				return false;
			}
			digits[nd++] = (char)cp;
		} else if (cp == '+' && nd == 0 && !plus) {
			plus = true;
		} else if (cp == ' ' || cp == '-' || cp == '.' || cp == '(' || cp == ')' ||
			   cp == 0x3000 || cp == 0xff08 || cp == 0xff09 || cp == 0xff0d ||
			   cp == 0xa0 || (cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212) {
			/* Pasted numbers bring no-break spaces and typographic dashes. */
			continue;
		} else {
			snprintf(why, whycap,
				 "phone may contain only digits, spaces, dashes, parentheses and a leading +");
			return false;
		}
	}
	digits[nd] = '\0';
	if (nd == 0) {
		snprintf(why, whycap, "phone is required");
		return false;
	}
	const char *d = digits;
	bool had_country = false;
	if (plus) {
		if (strncmp(d, "86", 2) != 0) {
			snprintf(why, whycap, "only Chinese numbers (+86) are accepted");
			return false;
		}
		d += 2;
		had_country = true;
	} else if (strncmp(d, "0086", 4) == 0) {
		d += 4;
		had_country = true;
	} else if (nd == 13 && strncmp(d, "861", 3) == 0) {
		d += 2;
		had_country = true;
	}
	size_t n = strlen(d);
	if (n == 0) {
		snprintf(why, whycap, "phone has no number after the country code");
		return false;
	}
	/* Mobiles start 13-19; "10" after +86 is Beijing's area code. */
	if (d[0] == '1' && d[1] != '0') {
		if (n != 11) {
			snprintf(why, whycap, "a mobile number has 11 digits, this one has %zu", n);
			return false;
		}
		if (d[1] < '3') {
			snprintf(why, whycap, "mobile numbers start with 13 to 19, not %.2s", d);
			return false;
		}
		memcpy(out, "+86", 3);
		memcpy(out + 3, d, 12); /* 11 digits and the NUL */
		return true;
	}
	/* A landline written after +86 drops the trunk 0 of its area code. */
	const char *area = d;
	char with_zero[sizeof digits + 1];
	if (had_country && d[0] != '0') {
		with_zero[0] = '0';
		memcpy(with_zero + 1, d, n + 1);
		area = with_zero;
		n++;
	}
	if (area[0] != '0') {
		snprintf(why, whycap, "not a Chinese phone number: a mobile starts with 1, a landline with its area code (0...)");
		return false;
	}
	/* 010 and 020-029 are three-digit area codes; the rest have four. */
	size_t area_len = (area[1] == '1' && area[2] == '0') || area[1] == '2' ? 3 : 4;
	if (area[1] == '0') {
		snprintf(why, whycap, "area codes do not start with 00");
		return false;
	}
	size_t local = n - area_len;
	if (n < area_len || local < 7 || local > 8) {
		snprintf(why, whycap, "a landline has a %zu-digit area code and a 7 or 8 digit number", area_len);
		return false;
	}
	if (area[area_len] == '0' || area[area_len] == '1') {
		snprintf(why, whycap, "a landline number does not start with 0 or 1 after its area code");
		return false;
	}
	/* At most 4 + 8 digits: fits PHONE_CANONICAL_MAX with "+86". */
	memcpy(out, "+86", 3);
	memcpy(out + 3, area + 1, n);
	out[3 + n - 1] = '\0';
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool uuid_parse(const char *s, uint8_t out[16])
{
	if (strlen(s) != 36)
		return false;
	int o = 0;
	for (int i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[o++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return o == 16;
}

void uuid_format(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 15];
	}
	out[o] = '\0';
}

void uuid_v7_new(char out[37])
{
	uint8_t id[16];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	randombytes_buf(id, sizeof id);
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)(ms >> (40 - 8 * i));
	id[6] = (uint8_t)(0x70 | (id[6] & 0x0f));
	id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
	uuid_format(id, out);
}

bool uuid_is_v7(const char *s)
{
	uint8_t id[16];
	return uuid_parse(s, id) && (id[6] >> 4) == 7 && (id[8] & 0xc0) == 0x80;
}
