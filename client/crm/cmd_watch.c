/* crm watch: prints the caller's tasks as they fall due, pushed by crmd
 * (reminder.subscribe; server/reminders.c), one line each.
 *
 * On start it prints the tasks that fell due while no desk was watching
 * (the subscription's catch-up, "overdue"), then each pushed one ("due").
 * When the server goes away (a restart, a drain) it connects again, resumes
 * the session and subscribes again; the new catch-up covers what fell due
 * meanwhile, and the tasks it already printed are not printed twice. It
 * pings now and then so an idle connection is not closed, and ends
 * cleanly, exit 0, on SIGINT or SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crm.h"
#include "pbjson.h"

static const char watch_usage[] = "crm watch [--json]";

#define PING_EVERY_MS 60000
#define RECONNECT_MAX_MS 5000
#define SEEN_MAX 4096                /* task ids remembered against repeats */

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The ids printed so far, the oldest forgotten first. */
struct seen {
	char ids[SEEN_MAX][37];
	size_t next, n;
};

static bool seen_has(const struct seen *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->ids[i], id))
			return true;
	return false;
}

static void seen_add(struct seen *s, const char *id)
{
	snprintf(s->ids[s->next], sizeof s->ids[0], "%s", id);
	s->next = (s->next + 1) % SEEN_MAX;
	if (s->n < SEEN_MAX)
		s->n++;
}

/* One line: a JSON document (a TaskDue), tab-separated fields into a pipe,
 * or aligned words on a terminal. */
static void print_due(const struct cli *cli, bool tsv, Crm__TaskDue *td)
{
	const Crm__Task *t = td->task;
	const char *kind = td->event && td->event->kind ? td->event->kind : "task.due";
	if (cli->json) {
		pbjson_print(stdout, &td->base, -1);
		fputc('\n', stdout);
	} else {
		char due[32];
		format_ms(t->due_at, due, sizeof due);
		const char *state = !strcmp(kind, "task.overdue") ? "overdue" : "due";
		const char *owner = *t->owner ? t->owner : "(pool)";
		if (tsv) {
			const char *cells[] = {state, due, t->customer_name, t->method, t->purpose,
					       owner, t->id};
			for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
				if (i)
					fputc('\t', stdout);
				for (const char *p = cells[i]; *p; p++)
					fputc(*p == '\t' || *p == '\n' ? ' ' : *p, stdout);
			}
			fputc('\n', stdout);
		} else {
			printf("%-7s  %s  ", state, due);
			print_padded(t->customer_name, 10);
			printf("  ");
			print_padded(method_word(t->method), 6);
			printf("  %s  %s  %s\n", t->purpose, owner, t->id);
		}
	}
	fflush(stdout);
}

/* Connects, resumes the saved session, subscribes; prints the catch-up.
 * Returns OK, or the status with the reason in `err`. */
static Crm__Code watch_open(struct cli *cli, const char *token, bool tsv, struct seen *seen,
		      char *err, size_t errcap)
{
	struct crmc_options opt = {.server = cli->server, .ca_file = cli->ca, .client_name = "crm"};
	Crm__Code code;
	cli->conn = crmc_connect(&opt, &code, err, errcap);
	if (!cli->conn)
		return code;
	Crm__ResumeRequest rr = CRM__RESUME_REQUEST__INIT;
	rr.token = (char *)token;
	Crm__Envelope req = CRM__ENVELOPE__INIT;
	req.body_case = CRM__ENVELOPE__BODY_RESUME;
	req.resume = &rr;
	Crm__Envelope *resp = crmc_call(cli->conn, &req, 30000, err, errcap);
	if (!resp)
		return CRM__CODE__UNAVAILABLE;
	code = crmc_status(resp);
	if (code != CRM__CODE__OK) {
		snprintf(err, errcap, "%s", code == CRM__CODE__UNAUTHENTICATED
						    ? "your session has expired or was ended: run crm login"
						    : crmc_status_message(resp));
		crm__envelope__free_unpacked(resp, NULL);
		return code;
	}
	crm__envelope__free_unpacked(resp, NULL);

	Crm__ReminderSubscribe rs = CRM__REMINDER_SUBSCRIBE__INIT;
	Crm__Envelope sub = CRM__ENVELOPE__INIT;
	sub.body_case = CRM__ENVELOPE__BODY_REMINDER_SUBSCRIBE;
	sub.reminder_subscribe = &rs;
	resp = crmc_call(cli->conn, &sub, 30000, err, errcap);
	if (!resp)
		return CRM__CODE__UNAVAILABLE;
	code = crmc_status(resp);
	if (code != CRM__CODE__OK || resp->body_case != CRM__ENVELOPE__BODY_REMINDER_SUBSCRIBED) {
		snprintf(err, errcap, "%s", code != CRM__CODE__OK ? crmc_status_message(resp)
								  : "unexpected answer to the subscription");
		crm__envelope__free_unpacked(resp, NULL);
		return code != CRM__CODE__OK ? code : CRM__CODE__INTERNAL;
	}
	const Crm__ReminderSubscribed *rd = resp->reminder_subscribed;
	for (size_t i = 0; i < rd->n_overdue; i++) {
		Crm__Task *t = rd->overdue[i];
		if (seen_has(seen, t->id))
			continue;
		seen_add(seen, t->id);
		char text[512];
		snprintf(text, sizeof text, "overdue: %s: %s (%s)", t->customer_name, t->purpose,
			 t->method);
		Crm__Event ev = CRM__EVENT__INIT;
		ev.kind = "task.overdue";
		ev.text = text;
		ev.at = rd->since;
		Crm__TaskDue td = CRM__TASK_DUE__INIT;
		td.event = &ev;
		td.task = t;
		print_due(cli, tsv, &td);
	}
	crm__envelope__free_unpacked(resp, NULL);
	return CRM__CODE__OK;
}

/* Frames until the connection goes or a signal comes. Returns true when
 * the server went away (draining, closed), false on a signal. */
static bool watch_loop(struct cli *cli, bool tsv, struct seen *seen)
{
	int64_t last_ping = mono_ms();
	char err[512];
	while (!stop_signal) {
		if (mono_ms() - last_ping >= PING_EVERY_MS) {
			Crm__Ping ping = CRM__PING__INIT;
			Crm__Envelope req = CRM__ENVELOPE__INIT;
			req.body_case = CRM__ENVELOPE__BODY_PING;
			req.ping = &ping;
			crmc_send(cli->conn, &req);
			crmc_flush(cli->conn);
			last_ping = mono_ms();
		}
		Crm__Envelope *env = crmc_recv(cli->conn, 250, err, sizeof err);
		if (!env) {
			if (!crmc_is_open(cli->conn)) {
				fprintf(stderr, "crm: lost the server: %s; connecting again\n", err);
				return true;
			}
			continue; /* timed out: look at the signal, maybe ping */
		}
		bool gone = false;
		if (env->body_case == CRM__ENVELOPE__BODY_TASK_DUE && env->task_due->task) {
			Crm__TaskDue *td = env->task_due;
			if (!seen_has(seen, td->task->id)) {
				seen_add(seen, td->task->id);
				print_due(cli, tsv, td);
			}
		} else if (env->body_case == CRM__ENVELOPE__BODY_EVENT && env->event->kind &&
			   !strcmp(env->event->kind, "server.draining")) {
			fprintf(stderr, "crm: the server is shutting down; connecting again\n");
			gone = true;
		} else if (env->id == 0 && crmc_status(env) != CRM__CODE__OK) {
			fprintf(stderr, "crm: the server closed the connection: %s\n",
				crmc_status_message(env));
			gone = true;
		}
		crm__envelope__free_unpacked(env, NULL);
		if (gone)
			return true;
	}
	return false;
}

/* Sleeps up to `ms`, waking early on a signal. */
static void pause_ms(int64_t ms)
{
	int64_t until = mono_ms() + ms;
	while (!stop_signal && mono_ms() < until)
		usleep(50 * 1000);
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: %s\n"
			       "Prints your tasks as they fall due (managers: also the store pool's),\n"
			       "after those already overdue; reconnects when the server restarts;\n"
			       "Ctrl-C ends it.\n",
			       watch_usage);
			return EXIT_OK;
		}
		return cli_usage(cli, watch_usage, "watch: unknown argument %s", argv[i]);
	}
	char token[200];
	if (!cli->server[0] || !cli->ca[0])
		return cli_connect(cli); /* says which is missing */
	if (!session_load(cli, token, sizeof token))
		return cli_fail(cli, EXIT_AUTH, "UNAUTHENTICATED", NULL,
				"not logged in to %s: run crm login", cli->server);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	bool tsv = !isatty(STDOUT_FILENO);
	struct seen *seen = calloc(1, sizeof *seen);
	if (!seen)
		return cli_fail(cli, EXIT_OTHER, "RESOURCE_EXHAUSTED", NULL, "out of memory");
	char err[512];
	Crm__Code code = watch_open(cli, token, tsv, seen, err, sizeof err);
	if (code != CRM__CODE__OK) {
		free(seen);
		return cli_fail(cli, exit_for_code(code), crmc_code_name(code), NULL, "%s", err);
	}
	int64_t backoff = 250;
	while (watch_loop(cli, tsv, seen)) {
		crmc_close(cli->conn);
		cli->conn = NULL;
		for (;;) {
			pause_ms(backoff);
			if (stop_signal)
				break;
			code = watch_open(cli, token, tsv, seen, err, sizeof err);
			if (code == CRM__CODE__OK) {
				fprintf(stderr, "crm: connected again; watching\n");
				backoff = 250;
				break;
			}
			if (cli->conn) {
				crmc_close(cli->conn);
				cli->conn = NULL;
			}
			/* Down or busy: try again. Refused: say why and stop. */
			if (code != CRM__CODE__UNAVAILABLE && code != CRM__CODE__RESOURCE_EXHAUSTED) {
				free(seen);
				return cli_fail(cli, exit_for_code(code), crmc_code_name(code), NULL,
						"%s", err);
			}
			backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : backoff * 2;
		}
		if (stop_signal)
			break;
	}
	free(seen);
	return EXIT_OK;
}
