/* Checks of text that comes from people: phone numbers, UUIDs, UTF-8. Pure
 * functions, shared by crmd (which decides) and crm (which warns early). */
#ifndef CRM_TEXTCHECK_H
#define CRM_TEXTCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "+86" and up to 12 digits, NUL included, with room to spare. */
#define PHONE_CANONICAL_MAX 24

/* Normalizes a Chinese phone number written any common way: +86 / 0086 / 86
 * prefixes, spaces, dashes, dots, parentheses, full-width digits. Mobiles
 * (11 digits, 13x-19x) become +86 and the 11 digits; landlines with an area
 * code (010 12345678, 0755-1234567) become +86, the area code without its
 * 0, and the number. On failure returns false with the reason in `why`. */
bool phone_normalize(const char *in, char out[PHONE_CANONICAL_MAX], char *why, size_t whycap);

/* Accepts the 36-character textual form, any case. */
bool uuid_parse(const char *s, uint8_t out[16]);
void uuid_format(const uint8_t id[16], char out[37]);
/* A new UUIDv7: 48-bit unix milliseconds, then random bits. */
void uuid_v7_new(char out[37]);
/* True when `s` is a well-formed UUID of version 7 (RFC 9562 variant). */
bool uuid_is_v7(const char *s);

/* Validates UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
bool utf8_valid(const char *s, size_t len);
/* Number of code points in valid UTF-8. */
size_t utf8_chars(const char *s);

/* A single-line field typed by a person: valid UTF-8, no control
 * characters, at most `max_chars` code points, not blank when `required`.
 * On failure false with a reason that names `field`. */
bool text_field_ok(const char *field, const char *s, size_t max_chars, bool required,
		   char *why, size_t whycap);

#endif
