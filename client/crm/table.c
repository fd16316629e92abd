/* Display width of UTF-8 text in a terminal: CJK and full-width forms take
 * two columns. Uses the C library's wcwidth under a UTF-8 locale. */
#include <locale.h>
#include <stdio.h>
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

int text_width(const char *s)
{
	locale_t loc = utf8_locale();
	locale_t old = loc ? uselocale(loc) : (locale_t)0;
	mbstate_t st;
	memset(&st, 0, sizeof st);
	int width = 0;
	size_t len = strlen(s);
	while (len > 0) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, len, &st);
		if (n == (size_t)-1 || n == (size_t)-2) {
			width++;
			s++;
			len--;
			memset(&st, 0, sizeof st);
			continue;
		}
		if (n == 0)
			break;
		int w = wcwidth(wc);
		width += w < 0 ? 1 : w;
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
