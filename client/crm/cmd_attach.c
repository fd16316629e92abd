/* crm attach put|get|list (issue 5; sql/0020): files of follow-ups, up to
 * 10 MiB each, sent and read back in chunks; and the attachments that
 * `crm followup list` and `crm customer show` print under each follow-up.
 *
 * put hashes the file (SHA-256), declares it (attachment.begin), sends it
 * in CHUNK_BYTES pieces with at most WINDOW unanswered, and commits; crmd
 * checks size and hash. get streams the file (attachment.get, WINDOW frames
 * of credit), writes it beside the target, checks size and SHA-256, and
 * only then moves it into place, never over an existing file unless
 * --force. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crm.h"
#include "textcheck.h"

#define ATTACH_MAX_BYTES (10u << 20)
#define CHUNK_BYTES (256u << 10)
#define WINDOW 4
#define CALL_TIMEOUT_MS 60000

static const char attach_usage[] =
	"crm attach put FOLLOWUP_ID FILE [--name NAME] [--type MEDIA_TYPE] [--id UUID]\n"
	"crm attach get ATTACHMENT_ID [-o FILE|-] [--force]\n"
	"crm attach list FOLLOWUP_ID\n"
	"  Files of up to 10 MiB: PDF, JPEG, PNG, WebP, HEIC, plain text, .docx, .xlsx,\n"
	"  .pptx. put finds the type from the file's first bytes and name (--type\n"
	"  overrides: application/pdf, image/jpeg, image/png, image/webp, image/heic,\n"
	"  text/plain). get writes the file under its own name in the current folder\n"
	"  (-o FILE elsewhere, -o - to standard output), never over an existing file\n"
	"  unless --force, and checks its size and SHA-256.";

static void hex32(const unsigned char *md, char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcasecmp(s + n - k, suffix);
}

/* The media type from the first bytes (and, for the ZIP container of Office
 * documents and for text, the name); NULL when it is none we accept. */
static const char *detect_type(const char *name, const uint8_t *d, size_t n)
{
	if (n >= 5 && !memcmp(d, "%PDF-", 5))
		return "application/pdf";
	if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
		return "image/jpeg";
	if (n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
		return "image/webp";
	if (n >= 12 && !memcmp(d + 4, "ftyp", 4) &&
	    (!memcmp(d + 8, "heic", 4) || !memcmp(d + 8, "heix", 4) || !memcmp(d + 8, "mif1", 4) ||
	     !memcmp(d + 8, "msf1", 4) || !memcmp(d + 8, "hevc", 4)))
		return "image/heic";
	if (n >= 4 && !memcmp(d, "PK\x03\x04", 4)) {
		if (ends_with(name, ".docx"))
			return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
		if (ends_with(name, ".xlsx"))
			return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
		if (ends_with(name, ".pptx"))
			return "application/vnd.openxmlformats-officedocument.presentationml.presentation";
		return NULL;
	}
	/* The head may end inside a UTF-8 sequence. */
	size_t m = n;
	if (n == 4096) {
		while (m > 0 && (d[m - 1] & 0xc0) == 0x80)
			m--;
		if (m > 0 && d[m - 1] >= 0xc0)
			m--;
	}
	if (!memchr(d, 0, n) && (ends_with(name, ".txt") || utf8_valid((const char *)d, m)))
		return "text/plain";
	return NULL;
}

/* ------------------------------------------------------------ put */

/* The file's size, SHA-256 and first bytes. */
static bool file_scan(int fd, uint64_t *size, char sha[65], uint8_t *head, size_t *head_len,
		      char *why, size_t whycap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *buf = malloc(CHUNK_BYTES);
	bool ok = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	*size = 0;
	*head_len = 0;
	while (ok) {
		ssize_t n = read(fd, buf, CHUNK_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, whycap, "cannot read it: %s", strerror(errno));
			ok = false;
			break;
		}
		if (n == 0)
			break;
		if (*head_len == 0) {
			*head_len = (size_t)n < 4096 ? (size_t)n : 4096;
			memcpy(head, buf, *head_len);
		}
		*size += (uint64_t)n;
		ok = EVP_DigestUpdate(md, buf, (size_t)n);
	}
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int outlen = 0;
	if (ok && (!EVP_DigestFinal_ex(md, out, &outlen) || outlen != 32)) {
		snprintf(why, whycap, "cannot compute its SHA-256");
		ok = false;
	}
	if (ok)
		hex32(out, sha);
	EVP_MD_CTX_free(md);
	free(buf);
	return ok;
}

static void progress(uint64_t done, uint64_t total, bool show)
{
	if (!show)
		return;
	fprintf(stderr, "\rsent %.1f of %.1f MiB (%3d%%)", (double)done / (1 << 20),
		(double)total / (1 << 20), (int)(total ? done * 100 / total : 100));
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* A reply to begin, chunk or commit: NULL (with *rc set and the error
 * printed) unless it is an OK AttachmentReply. */
static Crm__Envelope *attach_reply(struct cli *cli, Crm__Envelope *resp, int *rc)
{
	if (!resp)
		return NULL;
	if (crmc_status(resp) != CRM__CODE__OK) {
		*rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_ATTACHMENT_REPLY ||
		   !resp->attachment_reply) {
		*rc = cli_unexpected(cli, resp);
	} else {
		return resp;
	}
	crm__envelope__free_unpacked(resp, NULL);
	return NULL;
}

static Crm__Envelope *wait_for(struct cli *cli, uint64_t id, int *rc)
{
	char err[512];
	Crm__Envelope *resp = crmc_wait(cli->conn, id, CALL_TIMEOUT_MS, err, sizeof err);
	if (!resp)
		*rc = cli_fail(cli, EXIT_UNAVAILABLE, "UNAVAILABLE", NULL, "lost the server: %s", err);
	return resp;
}

/* Sends the file in chunks, at most WINDOW unanswered. */
static int send_chunks(struct cli *cli, int fd, const char *id, uint64_t size)
{
	uint8_t *buf = malloc(CHUNK_BYTES);
	if (!buf)
		return cli_fail(cli, EXIT_OTHER, "RESOURCE_EXHAUSTED", NULL, "out of memory");
	uint64_t pending[WINDOW];
	int npending = 0, rc = EXIT_OK;
	uint64_t sent = 0, acked = 0;
	bool show = !cli->json && isatty(STDERR_FILENO) && size >= (1u << 20);
	if (lseek(fd, 0, SEEK_SET) < 0)
		rc = cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL, "cannot read the file again: %s",
			      strerror(errno));
	while (rc == EXIT_OK && (sent < size || npending > 0)) {
		if (sent < size && npending < WINDOW) {
			size_t want = size - sent < CHUNK_BYTES ? (size_t)(size - sent) : CHUNK_BYTES;
			size_t got = 0;
			while (got < want) {
				ssize_t n = read(fd, buf + got, want - got);
				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0)
					break;
				got += (size_t)n;
			}
			if (got != want) {
				rc = cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL,
					      "the file changed while it was sent");
				break;
			}
			Crm__AttachmentChunk ch = CRM__ATTACHMENT_CHUNK__INIT;
			ch.id = (char *)id;
			ch.offset = sent;
			ch.data.data = buf;
			ch.data.len = got;
			Crm__Envelope req = CRM__ENVELOPE__INIT;
			req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_CHUNK;
			req.attachment_chunk = &ch;
			pending[npending++] = crmc_send(cli->conn, &req);
			sent += got;
			continue;
		}
		/* The window is full, or everything is sent: take the oldest answer. */
		Crm__Envelope *resp = attach_reply(cli, wait_for(cli, pending[0], &rc), &rc);
		if (!resp)
			break;
		acked = resp->attachment_reply->received;
		crm__envelope__free_unpacked(resp, NULL);
		memmove(pending, pending + 1, (size_t)(npending - 1) * sizeof pending[0]);
		npending--;
		progress(acked, size, show);
	}
	if (rc != EXIT_OK && show)
		fputc('\n', stderr);
	free(buf);
	return rc;
}

static void print_stored(const struct cli *cli, const Crm__AttachmentReply *ar)
{
	if (cli->json) {
		print_json(&ar->base);
		return;
	}
	const Crm__AttachmentInfo *a = ar->attachment;
	char size[32];
	format_size(a->size, size, sizeof size);
	printf("%s %s (%s, %s)\n  id %s\n  sha256 %s\n", ar->existed ? "already stored" : "stored",
	       a->name, size, a->media_type, a->id, a->sha256);
}

static int attach_put(struct cli *cli, int argc, char **argv)
{
	const char *u = attach_usage, *pos[2] = {NULL, NULL}, *name = NULL, *type = NULL,
		   *id_opt = NULL;
	int npos = 0, rc;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "--name") || !strcmp(a, "--type") || !strcmp(a, "--id")) {
			const char **dst = a[2] == 'n' ? &name : a[2] == 't' ? &type : &id_opt;
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, dst)) != EXIT_OK)
				return rc;
		} else if ((a[0] == '-' && a[1]) || npos == 2) {
			return cli_usage(cli, u, "attach put: unknown argument %s", a);
		} else {
			pos[npos++] = a;
		}
	}
	uint8_t raw[16];
	if (npos != 2)
		return cli_usage(cli, u, "attach put: give the follow-up ID and the file");
	if (!uuid_parse(pos[0], raw))
		return cli_usage(cli, u, "attach put: \"%s\" is not a follow-up ID (a UUID)", pos[0]);
	if (id_opt && !uuid_is_v7(id_opt))
		return cli_usage(cli, u, "--id \"%s\" must be a UUID version 7", id_opt);
	int fd = open(pos[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "file", "cannot open %s: %s",
				pos[1], strerror(errno));
	/* A file over the limit is refused here, before it is read through;
	 * crmd refuses it too. */
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > ATTACH_MAX_BYTES) {
		close(fd);
		return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "attachment.size",
				"%s is %lld bytes, over the limit of 10 MiB (10485760 bytes);"
				" nothing was sent", pos[1], (long long)st.st_size);
	}
	char path[4096];
	snprintf(path, sizeof path, "%s", pos[1]);
	if (!name)
		name = basename(path);
	uint64_t size;
	char sha[65], why[256];
	uint8_t head[4096];
	size_t head_len;
	if (!file_scan(fd, &size, sha, head, &head_len, why, sizeof why)) {
		close(fd);
		return cli_fail(cli, EXIT_OTHER, "INTERNAL", "file", "%s: %s", pos[1], why);
	}
	if (!type && !(type = detect_type(name, head, head_len))) {
		close(fd);
		return cli_fail(cli, EXIT_INVALID, "INVALID_ARGUMENT", "media_type",
				"%s is none of the file types accepted (PDF, JPEG, PNG, WebP, HEIC,"
				" plain text, .docx, .xlsx, .pptx); give --type if it is one", pos[1]);
	}
	char id[37];
	if (id_opt)
		snprintf(id, sizeof id, "%s", id_opt);
	else
		uuid_v7_new(id);
	if ((rc = cli_connect_session(cli)) != EXIT_OK) {
		close(fd);
		return rc;
	}
	/* Declared first: crmd refuses a file over the limit before any byte. */
	Crm__AttachmentInfo info = CRM__ATTACHMENT_INFO__INIT;
	info.id = id;
	info.followup_id = (char *)pos[0];
	info.name = (char *)name;
	info.media_type = (char *)type;
	info.size = size;
	info.sha256 = sha;
	Crm__AttachmentBegin ab = CRM__ATTACHMENT_BEGIN__INIT;
	ab.attachment = &info;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_BEGIN;
	req.attachment_begin = &ab;
	Crm__Envelope *resp = attach_reply(cli, cli_call(cli, &req, &rc), &rc);
	if (resp && !resp->attachment_reply->existed) {
		crm__envelope__free_unpacked(resp, NULL);
		resp = NULL;
		if ((rc = send_chunks(cli, fd, id, size)) == EXIT_OK) {
			Crm__AttachmentCommit cm = CRM__ATTACHMENT_COMMIT__INIT;
			cm.id = id;
			Crm__Envelope creq = CRM__ENVELOPE__INIT;
			creq.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_COMMIT;
			creq.attachment_commit = &cm;
			resp = attach_reply(cli, cli_call(cli, &creq, &rc), &rc);
		}
	}
	close(fd);
	if (!resp)
		return rc;
	print_stored(cli, resp->attachment_reply);
	crm__envelope__free_unpacked(resp, NULL);
	return EXIT_OK;
}

/* ------------------------------------------------------------ get */

struct download {
	const char *target;       /* "-": standard output */
	char tmp[4200];           /* the file being written, until it is checked */
	int fd;
	EVP_MD_CTX *md;
	uint64_t written;
};

static int download_open(struct cli *cli, struct download *d)
{
	if (!strcmp(d->target, "-")) {
		d->fd = STDOUT_FILENO;
		return EXIT_OK;
	}
	/* dirname and basename may write into their argument. */
	char dir[2048], base[2048];
	snprintf(dir, sizeof dir, "%s", d->target);
	snprintf(base, sizeof base, "%s", d->target);
	snprintf(d->tmp, sizeof d->tmp, "%s/.%s.part-%ld", dirname(dir), basename(base),
		 (long)getpid());
	d->fd = open(d->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (d->fd < 0)
		return cli_fail(cli, EXIT_OTHER, "INTERNAL", "output", "cannot write %s: %s", d->tmp,
				strerror(errno));
	return EXIT_OK;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Checks what was written against the attachment, then moves it into
 * place: over an existing file only with --force. */
static int download_finish(struct cli *cli, struct download *d, const Crm__AttachmentInfo *a,
			   bool force)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char got[65] = "";
	if (EVP_DigestFinal_ex(d->md, md, &mdlen) && mdlen == 32)
		hex32(md, got);
	bool to_stdout = d->fd == STDOUT_FILENO;
	if (!to_stdout && close(d->fd) != 0) {
		d->fd = -1;
		return cli_fail(cli, EXIT_OTHER, "INTERNAL", "output", "cannot write %s: %s", d->tmp,
				strerror(errno));
	}
	d->fd = -1;
	if (d->written != a->size)
		return cli_fail(cli, EXIT_OTHER, "DATA_LOSS", "size",
				"received %llu bytes of %s, but it has %llu; nothing was kept",
				(unsigned long long)d->written, a->id, (unsigned long long)a->size);
	if (strcmp(got, a->sha256) != 0)
		return cli_fail(cli, EXIT_OTHER, "DATA_LOSS", "sha256",
				"the bytes received have SHA-256 %s, not the stored %s; nothing was kept",
				got, a->sha256);
	if (to_stdout)
		return EXIT_OK;
	if (force) {
		if (rename(d->tmp, d->target) != 0)
			return cli_fail(cli, EXIT_OTHER, "INTERNAL", "output", "cannot write %s: %s",
					d->target, strerror(errno));
	} else {
		/* link() never replaces: another file that appeared meanwhile stays. */
		if (link(d->tmp, d->target) != 0)
			return cli_fail(cli, errno == EEXIST ? EXIT_CONFLICT : EXIT_OTHER,
					errno == EEXIST ? "ALREADY_EXISTS" : "INTERNAL", "output",
					"%s %s; give --force to replace it", d->target,
					errno == EEXIST ? "exists" : strerror(errno));
		unlink(d->tmp);
	}
	d->tmp[0] = '\0';
	return EXIT_OK;
}

static int attach_get(struct cli *cli, int argc, char **argv)
{
	const char *u = attach_usage, *id = NULL, *out = NULL;
	bool force = false;
	int rc;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json"))
			continue;
		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if ((rc = cli_opt_value(cli, u, argc, argv, &i, &out)) != EXIT_OK)
				return rc;
		} else if (!strcmp(a, "--force")) {
			force = true;
		} else if (a[0] == '-' || id) {
			return cli_usage(cli, u, "attach get: unknown argument %s", a);
		} else {
			id = a;
		}
	}
	uint8_t raw[16];
	if (!id || !uuid_parse(id, raw))
		return cli_usage(cli, u, "attach get: give the attachment ID (a UUID)");
	if (out && !strcmp(out, "-") && cli->json)
		return cli_usage(cli, u, "attach get: -o - and --json both want standard output");
	struct stat st;
	if (out && strcmp(out, "-") && !force && stat(out, &st) == 0)
		return cli_fail(cli, EXIT_CONFLICT, "ALREADY_EXISTS", "output",
				"%s exists; give --force to replace it", out);
	if ((rc = cli_connect_session(cli)) != EXIT_OK)
		return rc;
	Crm__AttachmentGet ag = CRM__ATTACHMENT_GET__INIT;
	ag.id = (char *)id;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_GET;
	req.attachment_get = &ag;
	req.credit = WINDOW;
	uint64_t rid = crmc_send(cli->conn, &req);

	struct download d = {.target = out, .fd = -1, .md = EVP_MD_CTX_new()};
	Crm__Envelope *first = NULL; /* holds the attachment's metadata */
	rc = d.md && EVP_DigestInit_ex(d.md, EVP_sha256(), NULL)
		     ? EXIT_OK
		     : cli_fail(cli, EXIT_OTHER, "INTERNAL", NULL, "cannot compute SHA-256");
	bool more = true;
	while (rc == EXIT_OK && more) {
		Crm__Envelope *resp = wait_for(cli, rid, &rc);
		if (!resp)
			break;
		more = resp->more;
		const Crm__AttachmentData *ad = resp->attachment_data;
		if (crmc_status(resp) != CRM__CODE__OK) {
			rc = cli_fail_response(cli, resp);
		} else if (resp->body_case != CRM__ENVELOPE__BODY_ATTACHMENT_DATA || !ad ||
			   (!first && !ad->attachment) || ad->offset != d.written) {
			rc = cli_unexpected(cli, resp);
		} else {
			if (!first) {
				/* The target is known once the name is. */
				if (!d.target) {
					d.target = ad->attachment->name;
					if (!force && stat(d.target, &st) == 0)
						rc = cli_fail(cli, EXIT_CONFLICT, "ALREADY_EXISTS", "output",
							      "%s exists; give --force to replace it"
							      " (or -o FILE)", d.target);
				}
				if (rc == EXIT_OK)
					rc = download_open(cli, &d);
			}
			if (rc == EXIT_OK &&
			    (!write_all(d.fd, ad->data.data, ad->data.len) ||
			     !EVP_DigestUpdate(d.md, ad->data.data, ad->data.len)))
				rc = cli_fail(cli, EXIT_OTHER, "INTERNAL", "output", "cannot write %s: %s",
					      d.fd == STDOUT_FILENO ? "standard output" : d.tmp,
					      strerror(errno));
			d.written += ad->data.len;
			if (more)
				crmc_stream_credit(cli->conn, rid, 1);
		}
		if (!first && rc == EXIT_OK && resp->attachment_data)
			first = resp;
		else
			crm__envelope__free_unpacked(resp, NULL);
	}
	if (rc == EXIT_OK && first)
		rc = download_finish(cli, &d, first->attachment_data->attachment, force);
	if (d.fd >= 0 && d.fd != STDOUT_FILENO)
		close(d.fd);
	if (d.tmp[0])
		unlink(d.tmp); /* nothing half-written or unchecked is left */
	EVP_MD_CTX_free(d.md);
	if (rc == EXIT_OK) {
		const Crm__AttachmentInfo *a = first->attachment_data->attachment;
		char size[32];
		format_size(a->size, size, sizeof size);
		if (cli->json)
			print_json(&a->base);
		else
			fprintf(strcmp(d.target, "-") ? stdout : stderr,
				"wrote %s (%s, %s), SHA-256 checked\n", d.target, size, a->media_type);
	}
	if (first)
		crm__envelope__free_unpacked(first, NULL);
	return rc;
}

/* ------------------------------------------------------------ list */

static Crm__Envelope *list_call(struct cli *cli, char **ids, size_t n, int *rc)
{
	Crm__AttachmentList al = CRM__ATTACHMENT_LIST__INIT;
	al.followup_ids = ids;
	al.n_followup_ids = n;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_ATTACHMENT_LIST;
	req.attachment_list = &al;
	return cli_call(cli, &req, rc);
}

static int attach_list(struct cli *cli, int argc, char **argv)
{
	const char *u = attach_usage;
	char *id = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		if (argv[i][0] == '-' || id)
			return cli_usage(cli, u, "attach list: unknown argument %s", argv[i]);
		id = argv[i];
	}
	uint8_t raw[16];
	if (!id || !uuid_parse(id, raw))
		return cli_usage(cli, u, "attach list: give the follow-up ID (a UUID)");
	int rc = cli_connect_session(cli);
	if (rc != EXIT_OK)
		return rc;
	Crm__Envelope *resp = list_call(cli, &id, 1, &rc);
	if (!resp)
		return rc;
	if (crmc_status(resp) != CRM__CODE__OK) {
		rc = cli_fail_response(cli, resp);
	} else if (resp->body_case != CRM__ENVELOPE__BODY_ATTACHMENT_PAGE || !resp->attachment_page) {
		rc = cli_unexpected(cli, resp);
	} else if (cli->json) {
		print_json(&resp->attachment_page->base);
	} else if (!resp->attachment_page->n_attachments) {
		printf("no attachments\n");
	} else {
		static const char *const headers[] = {"name", "type", "size", "by", "stored", "id"};
		struct table t;
		if (table_init(&t, 6, headers)) {
			for (size_t i = 0; i < resp->attachment_page->n_attachments; i++) {
				const Crm__AttachmentInfo *a = resp->attachment_page->attachments[i];
				char size[32], when[32];
				format_size(a->size, size, sizeof size);
				format_ms(a->created_at, when, sizeof when);
				const char *cells[] = {a->name, a->media_type, size, a->uploaded_by, when,
						       a->id};
				table_add(&t, cells);
			}
			table_fit(&t);
			if (isatty(STDOUT_FILENO)) {
				table_print_header(&t, stdout, "");
				table_print_rows(&t, stdout, "");
			} else {
				table_print_tsv_rows(&t, stdout);
			}
			table_free(&t);
		}
	}
	crm__envelope__free_unpacked(resp, NULL);
	return rc;
}

int cmd_attach(struct cli *cli, int argc, char **argv)
{
	if (argc < 1)
		return cli_usage(cli, attach_usage, "attach: put, get or list?");
	if (!strcmp(argv[0], "put"))
		return attach_put(cli, argc - 1, argv + 1);
	if (!strcmp(argv[0], "get"))
		return attach_get(cli, argc - 1, argv + 1);
	if (!strcmp(argv[0], "list"))
		return attach_list(cli, argc - 1, argv + 1);
	return cli_usage(cli, attach_usage, "attach: unknown subcommand %s", argv[0]);
}

/* ------------------------------------------------------------ follow-ups */

/* The reply whose attachments the follow-ups point into. crm prints one
 * list of follow-ups per run. */
static Crm__Envelope *held_page;

void attach_fill_followups(struct cli *cli, Crm__Followup **f, size_t n)
{
	if (!n || n > 1000 || held_page)
		return;
	char **ids = calloc(n, sizeof *ids);
	if (!ids)
		return;
	for (size_t i = 0; i < n; i++)
		ids[i] = f[i]->id;
	int rc;
	Crm__Envelope *resp = list_call(cli, ids, n, &rc);
	free(ids);
	if (!resp || crmc_status(resp) != CRM__CODE__OK ||
	    resp->body_case != CRM__ENVELOPE__BODY_ATTACHMENT_PAGE) {
		if (resp)
			crm__envelope__free_unpacked(resp, NULL);
		return; /* the follow-ups print without them */
	}
	held_page = resp;
	const Crm__AttachmentPage *page = resp->attachment_page;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		for (size_t j = 0; j < page->n_attachments; j++)
			k += !strcmp(page->attachments[j]->followup_id, f[i]->id);
		if (!k || !(f[i]->attachments = calloc(k, sizeof *f[i]->attachments)))
			continue;
		for (size_t j = 0; j < page->n_attachments; j++)
			if (!strcmp(page->attachments[j]->followup_id, f[i]->id))
				f[i]->attachments[f[i]->n_attachments++] = page->attachments[j];
	}
}

void attach_drop_followups(Crm__Followup **f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i]->attachments);
		f[i]->attachments = NULL;
		f[i]->n_attachments = 0;
	}
	if (held_page)
		crm__envelope__free_unpacked(held_page, NULL);
	held_page = NULL;
}
