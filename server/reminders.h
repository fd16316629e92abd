/* Pushed reminders: a TaskDue frame (id 0) to each subscribed connection
 * when one of its user's open tasks falls due (issue 5; sql/0021).
 *
 * crmd keeps a database connection of its own for them (a pool of one, so a
 * busy request pool never delays a reminder; it reconnects with backoff like
 * the request pool) and, once a second while some connection is subscribed,
 * reads the tasks that fell due since the last look through
 * crm.reminders_due (an index range scan per subscribed session). sql/0021
 * says why this polls the index rather than LISTEN/NOTIFY. The cursor moves
 * only when a look succeeds, so a PostgreSQL restart delays reminders but
 * loses none. */
#ifndef CRM_REMINDERS_H
#define CRM_REMINDERS_H

#include "server.h"

/* Starts the connection and the timer; false with the reason in `err`. */
bool reminders_start(struct server *srv, char *err, size_t errcap);
/* Stops the timer and closes the connection (the drain, before the request
 * pool closes). Safe to call twice or without a start. */
void reminders_stop(struct server *srv);
/* The connection is going away: forget its subscription. */
void reminders_conn_closed(struct conn *c);
/* reminder.subscribe: subscribes (or with `off` unsubscribes) the
 * connection and answers what already fell due before (ReminderSubscribed). */
void h_reminder_subscribe(struct request *r);

#endif
