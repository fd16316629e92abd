/* Display width of UTF-8 text in a terminal, and tables aligned by it: CJK
 * and full-width forms take two columns. Uses the C library's wcwidth under
 * a UTF-8 locale. */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "crm.h"

static locale_t utf8_locale(void)
{
	static locale_t loc;
	static int tried;
	if (!tried) {
		tried = 1;
		loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	return loc;
}

/* Walks `s` one character at a time: *len gets its bytes, the return value
 * its width. Invalid bytes count as one byte of width one. */
static int next_char(const char *s, size_t avail, size_t *len)
{
	mbstate_t st;
	memset(&st, 0, sizeof st);
	wchar_t wc;
	size_t n = mbrtowc(&wc, s, avail, &st);
	if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
		*len = 1;
		return 1;
	}
	*len = n;
	int w = wcwidth(wc);
	return w < 0 ? 1 : w;
}

int text_width(const char *s)
{
	locale_t loc = utf8_locale();
	locale_t old = loc ? uselocale(loc) : (locale_t)0;
	int width = 0;
	size_t len = strlen(s);
	while (len > 0) {
		size_t n;
		width += next_char(s, len, &n);
		s += n;
		len -= n;
	}
	if (loc)
		uselocale(old);
	return width;
}

void print_padded(const char *s, int width)
{
	fputs(s, stdout);
	for (int w = text_width(s); w < width; w++)
		fputc(' ', stdout);
}

void text_truncate(const char *s, int max_width, char *out, size_t cap)
{
	static const char ellipsis[] = "…"; /* one column wide */
	if (cap == 0)
		return;
	out[0] = '\0';
	if (max_width <= 0)
		return;
	size_t slen = strlen(s);
	if (text_width(s) <= max_width && slen < cap) {
		memcpy(out, s, slen + 1);
		return;
	}
	locale_t loc = utf8_locale();
	locale_t old = loc ? uselocale(loc) : (locale_t)0;
	/* Room for the ellipsis: one column, and its bytes. */
	int budget = max_width - 1;
	size_t used = 0, len = slen;
	int width = 0;
	const char *p = s;
	while (len > 0) {
		size_t n;
		int w = next_char(p, len, &n);
		if (width + w > budget || used + n + sizeof ellipsis > cap)
			break;
		memcpy(out + used, p, n);
		used += n;
		width += w;
		p += n;
		len -= n;
	}
	if (loc)
		uselocale(old);
	if (used + sizeof ellipsis <= cap) {
		memcpy(out + used, ellipsis, sizeof ellipsis);
	} else {
		out[used] = '\0';
	}
}

bool table_init(struct table *t, int ncols, const char *const *headers)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols;
	t->headers = calloc((size_t)ncols, sizeof *t->headers);
	t->widths = calloc((size_t)ncols, sizeof *t->widths);
	t->max_widths = calloc((size_t)ncols, sizeof *t->max_widths);
	if (!t->headers || !t->widths || !t->max_widths) {
		table_free(t);
		return false;
	}
	for (int c = 0; c < ncols; c++)
		t->headers[c] = headers[c];
	return true;
}

bool table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		char **p = realloc(t->cells, cap * (size_t)t->ncols * sizeof *p);
		if (!p)
			return false;
		t->cells = p;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * (size_t)t->ncols;
	for (int c = 0; c < t->ncols; c++) {
		row[c] = strdup(cells[c] ? cells[c] : "");
		if (!row[c]) {
			while (c-- > 0)
				free(row[c]);
			return false;
		}
	}
	t->nrows++;
	return true;
}

void table_fit(struct table *t)
{
	for (int c = 0; c < t->ncols; c++) {
		int w = text_width(t->headers[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			int cw = text_width(t->cells[r * (size_t)t->ncols + (size_t)c]);
			if (cw > w)
				w = cw;
		}
		if (t->max_widths[c] && w > t->max_widths[c])
			w = t->max_widths[c];
		if (w > t->widths[c])
			t->widths[c] = w;
	}
}

static void print_line(const struct table *t, FILE *out, const char *indent,
		       const char *const *cells)
{
	fputs(indent, out);
	/* Trailing empty cells would only leave trailing blanks. */
	int last = t->ncols - 1;
	while (last > 0 && !cells[last][0])
		last--;
	for (int c = 0; c <= last; c++) {
		const char *s = cells[c];
		char cut[1024];
		int w = text_width(s);
		if (w > t->widths[c]) {
			text_truncate(s, t->widths[c], cut, sizeof cut);
			s = cut;
			w = text_width(s);
		}
		fputs(s, out);
		if (c < last)
			for (; w < t->widths[c] + 2; w++)
				fputc(' ', out);
	}
	fputc('\n', out);
}

void table_print_header(const struct table *t, FILE *out, const char *indent)
{
	print_line(t, out, indent, t->headers);
}

void table_print_rows(const struct table *t, FILE *out, const char *indent)
{
	for (size_t r = 0; r < t->nrows; r++)
		print_line(t, out, indent, (const char *const *)t->cells + r * (size_t)t->ncols);
}

static void put_tsv_cell(const char *s, FILE *out)
{
	for (; *s; s++)
		fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, out);
}

void table_print_tsv_header(const struct table *t, FILE *out)
{
	for (int c = 0; c < t->ncols; c++) {
		if (c)
			fputc('\t', out);
		put_tsv_cell(t->headers[c], out);
	}
	fputc('\n', out);
}

void table_print_tsv_rows(const struct table *t, FILE *out)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			if (c)
				fputc('\t', out);
			put_tsv_cell(t->cells[r * (size_t)t->ncols + (size_t)c], out);
		}
		fputc('\n', out);
	}
}

void table_clear_rows(struct table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	t->nrows = 0;
}

void table_free(struct table *t)
{
	if (t->cells)
		table_clear_rows(t);
	free(t->cells);
	free(t->headers);
	free(t->widths);
	free(t->max_widths);
	memset(t, 0, sizeof *t);
}

const char *const list_column_names[COL__COUNT] = {
	[COL_ID] = "id",
	[COL_NAME] = "name",
	[COL_PHONE] = "phone",
	[COL_GENDER] = "gender",
	[COL_LEVEL] = "level",
	[COL_SOURCE] = "source",
	[COL_OWNER] = "owner",
	[COL_OWNER_NAME] = "owner_name",
	[COL_STORE] = "store",
	[COL_MODEL] = "model",
	[COL_BUDGET] = "budget",
	[COL_REGION] = "region",
	[COL_TAGS] = "tags",
	[COL_IMPORTANT] = "important",
	[COL_LAST_CONTACT] = "last_contact",
	[COL_NEXT_FOLLOWUP] = "next_followup",
	[COL_CREATED] = "created",
	[COL_RELATION_ID] = "relation_id",
	[COL_VERSION] = "version",
	[COL_RELATION_VERSION] = "relation_version",
};

const char list_default_columns[] = "name,phone,level,source,owner,model,last_contact";

bool columns_parse(const char *spec, enum list_column *cols, int *ncols, char *why,
		   size_t whycap)
{
	*ncols = 0;
	const char *p = spec;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int found = -1;
		for (int c = 0; c < COL__COUNT; c++)
			if (strlen(list_column_names[c]) == len &&
			    !strncmp(list_column_names[c], p, len))
				found = c;
		if (found < 0) {
			size_t n = (size_t)snprintf(why, whycap, "%s \"%.*s\"; the columns are",
						    len ? "unknown column" : "empty column name in",
						    len ? (int)len : (int)strlen(spec), len ? p : spec);
			for (int c = 0; c < COL__COUNT && n < whycap; c++)
				n += (size_t)snprintf(why + n, whycap - n, "%s %s", c ? "," : "",
						      list_column_names[c]);
			return false;
		}
		if (*ncols == LIST_MAX_COLUMNS) {
			snprintf(why, whycap, "at most %d columns", LIST_MAX_COLUMNS);
			return false;
		}
		cols[(*ncols)++] = (enum list_column)found;
		if (!end)
			break;
		p = end + 1;
	}
	return true;
}
