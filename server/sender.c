/* The message senders of sender.h: "spool" (a file per message) and
 * "none" (refuses). */
#include "sender.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pbjson.h"

struct sender_ops {
	const char *name;
	/* NULL: accepts. Else why every message is refused. */
	const char *refusal;
	bool (*send)(struct sender *s, uv_loop_t *loop, const struct sender_message *m,
		     sender_done_fn done, void *arg, char *why, size_t whycap);
};

struct sender {
	const struct sender_ops *ops;
	char spool_dir[512];
};

/* ------------------------------------------------------------ spool */

/* One message on its way to the spool folder. The file's content is made
 * on the loop thread; the worker only writes it. */
struct spool_job {
	uv_work_t work;
	char path[600];                /* spool_dir/ID.json */
	char tmp[600];                 /* spool_dir/.ID.json.tmp */
	char dir[512];
	char *content;
	size_t len;
	bool ok;
	char error[1024];
	sender_done_fn done;
	void *arg;
};

/* mkdir -p, the last level mode 0700. Worker thread. */
static bool make_dir(const char *dir, char *why, size_t whycap)
{
	char path[512];
	snprintf(path, sizeof path, "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			goto failed;
		*p = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		goto failed;
	return true;
failed:;
	char buf[128];
	snprintf(why, whycap, "cannot make the spool folder %s: %s", path,
		 strerror_r(errno, buf, sizeof buf));
	return false;
}

/* Worker thread: write the temporary file, fsync it, rename it into place
 * and fsync the folder, so the message is whole and durable before the
 * gateway can see it (it picks up *.json only). */
static void spool_write(uv_work_t *w)
{
	struct spool_job *j = w->data;
	char buf[128];
	const char *step = "open";
	int fd = -1, dfd = -1;
	if (!make_dir(j->dir, j->error, sizeof j->error))
		return;
	fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto failed;
	step = "write";
	for (size_t done = 0; done < j->len;) {
		ssize_t n = write(fd, j->content + done, j->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto failed;
		done += (size_t)n;
	}
	step = "fsync";
	if (fsync(fd) != 0)
		goto failed;
	step = "close";
	if (close(fd) != 0) {
		fd = -1;
		goto failed;
	}
	fd = -1;
	step = "rename";
	if (rename(j->tmp, j->path) != 0)
		goto failed;
	step = "fsync the folder of";
	dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0)
		goto failed;
	close(dfd);
	j->ok = true;
	return;
failed:
	snprintf(j->error, sizeof j->error, "cannot %s %s: %s", step, j->tmp,
		 strerror_r(errno, buf, sizeof buf));
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	unlink(j->tmp);
}

static void spool_written(uv_work_t *w, int status)
{
	struct spool_job *j = w->data;
	if (status != 0 && j->ok == false && !j->error[0])
		snprintf(j->error, sizeof j->error, "the spool write was cancelled");
	char path[700], reason[400];
	log_quote(path, sizeof path, j->path);
	if (j->ok)
		log_info("sender.spooled", "path=%s", path);
	else
		log_error("sender.failed", "path=%s reason=%s", path,
			  log_quote(reason, sizeof reason, j->error));
	j->done(j->arg, j->ok, j->ok ? NULL : j->error);
	free(j->content);
	free(j);
}

/* The file: one JSON object with the message and what it belongs to. */
static char *spool_content(const struct sender_message *m, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	static const char *const keys[] = {"id", "channel", "to", "text", "customer_id",
					   "relation_id", "store_code", "template_id", "by"};
	const char *values[] = {m->id, m->channel, m->to, m->text, m->customer_id,
				m->relation_id, m->store_code, m->template_id, m->by};
	fputs("{", f);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		fprintf(f, "%s\"%s\": ", i ? ",\n " : "", keys[i]);
		pbjson_string(f, values[i] ? values[i] : "");
	}
	fprintf(f, ",\n \"template_version\": %llu,\n \"created_at\": %lld}\n",
		(unsigned long long)m->template_version, (long long)m->created_at);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static bool spool_send(struct sender *s, uv_loop_t *loop, const struct sender_message *m,
		       sender_done_fn done, void *arg, char *why, size_t whycap)
{
	/* The id names a file: a UUID, nothing else. */
	if (!m->id || strlen(m->id) != 36 || strspn(m->id, "0123456789abcdefABCDEF-") != 36) {
		snprintf(why, whycap, "the message id is not a UUID");
		return false;
	}
	struct spool_job *j = calloc(1, sizeof *j);
	if (!j) {
		snprintf(why, whycap, "out of memory");
		return false;
	}
	snprintf(j->dir, sizeof j->dir, "%s", s->spool_dir);
	snprintf(j->path, sizeof j->path, "%s/%s.json", s->spool_dir, m->id);
	snprintf(j->tmp, sizeof j->tmp, "%s/.%s.json.tmp", s->spool_dir, m->id);
	j->content = spool_content(m, &j->len);
	j->done = done;
	j->arg = arg;
	j->work.data = j;
	if (!j->content || uv_queue_work(loop, &j->work, spool_write, spool_written) != 0) {
		snprintf(why, whycap, "%s", j->content ? "the thread pool refused the write"
						       : "out of memory");
		free(j->content);
		free(j);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ none */

static bool none_send(struct sender *s, uv_loop_t *loop, const struct sender_message *m,
		      sender_done_fn done, void *arg, char *why, size_t whycap)
{
	(void)loop, (void)m, (void)done, (void)arg;
	snprintf(why, whycap, "%s", s->ops->refusal);
	return false;
}

static const struct sender_ops senders[] = {
	{"spool", NULL, spool_send},
	{"none", "this server sends no messages (sender.kind = none); nothing was recorded",
	 none_send},
};

/* ------------------------------------------------------------ interface */

struct sender *sender_get(const struct crm_config *cfg, char *why, size_t whycap)
{
	static struct sender the_sender;
	if (the_sender.ops)
		return &the_sender;
	for (size_t i = 0; i < sizeof senders / sizeof senders[0]; i++) {
		if (strcmp(cfg->sender_kind, senders[i].name) != 0)
			continue;
		if (!strcmp(senders[i].name, "spool") && !cfg->spool_dir[0]) {
			snprintf(why, whycap, "sender.spool_dir is empty: name the spool folder");
			return NULL;
		}
		snprintf(the_sender.spool_dir, sizeof the_sender.spool_dir, "%s", cfg->spool_dir);
		the_sender.ops = &senders[i];
			char dir[600];
		log_info("sender.ready", "kind=%s spool_dir=%s", the_sender.ops->name,
			 log_quote(dir, sizeof dir, the_sender.spool_dir));
		return &the_sender;
	}
	snprintf(why, whycap, "sender.kind \"%s\" is no sender: spool or none", cfg->sender_kind);
	return NULL;
}

const char *sender_name(const struct sender *s) { return s->ops->name; }

bool sender_accepts(const struct sender *s, char *why, size_t whycap)
{
	if (!s->ops->refusal)
		return true;
	snprintf(why, whycap, "%s", s->ops->refusal);
	return false;
}

bool sender_send(struct sender *s, uv_loop_t *loop, const struct sender_message *m,
		 sender_done_fn done, void *arg, char *why, size_t whycap)
{
	return s->ops->send(s, loop, m, done, arg, why, whycap);
}
