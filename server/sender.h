/* Message senders: how a message rendered from a template leaves crmd
 * (crm template send). One interface, chosen by [sender] kind:
 *
 *   spool  writes one file per message into [sender] spool_dir for a
 *          gateway (SMS, WeChat, mail) to pick up;
 *   none   refuses every message.
 *
 * A sender is called on the loop thread and must never block it: the
 * spool sender's write, fsync and rename run on libuv's thread pool
 * (uv_queue_work), because an fsync can take from milliseconds to seconds
 * on a busy disk and the loop serves every other client meanwhile. The
 * result comes back on the loop thread.
 *
 * Messages are named by the follow-up that records them (its UUID): the
 * same message handed over twice (a retried send) replaces the file of the
 * first, so a gateway sees it once. */
#ifndef CRM_SENDER_H
#define CRM_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

struct sender_message {
	const char *id;                /* the follow-up's UUID: names the message */
	const char *channel;           /* sms, wechat, email */
	const char *to;                /* the real address: phone, WeChat ID, email */
	const char *text;
	const char *customer_id;
	const char *relation_id;
	const char *store_code;
	const char *template_id;
	uint64_t template_version;
	const char *by;                /* username of the sender */
	int64_t created_at;            /* unix ms */
};

/* Runs once on the loop thread: ok, or false with a plain reason. */
typedef void (*sender_done_fn)(void *arg, bool ok, const char *error);

struct sender;

/* The sender [sender] configures, made at the first call (one per process:
 * crmd has one configuration). NULL with the reason when the configuration
 * names no known sender. */
struct sender *sender_get(const struct crm_config *cfg, char *why, size_t whycap);
/* "spool", "none". */
const char *sender_name(const struct sender *s);
/* False, with the reason, when the sender refuses every message ("none"):
 * checked before anything is recorded. */
bool sender_accepts(const struct sender *s, char *why, size_t whycap);
/* Hands `m` over; the sender copies what it needs before returning. On
 * true `done` runs later, never from within this call; on false (refused
 * at once, or out of memory) it never runs and `why` says what happened. */
bool sender_send(struct sender *s, uv_loop_t *loop, const struct sender_message *m,
		 sender_done_fn done, void *arg, char *why, size_t whycap);

#endif
