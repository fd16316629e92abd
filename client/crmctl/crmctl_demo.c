/* crmctl demo: a demonstration group with three stores, one user per store
 * role at each, and two group users, with random passwords written to a
 * logins file (mode 0600). Running it again changes nothing: the file is
 * the record of the demo passwords, so users found there are kept, and only
 * users missing from the database or from the file, or whose password there
 * does not meet the password policy, are (re)made. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crmctl.h"

#define DEMO_GROUP "示例汽车集团"
#define DEMO_PASSWORD_LEN 16

struct demo_store {
	const char *code, *prefix, *name, *city, *brand;
	const char *people[5];    /* display names, in store_roles order */
};

static const char *const demo_store_roles[5] = {"consultant", "sales_manager",
						"service_advisor", "call_center",
						"store_manager"};

static const struct demo_store demo_stores[] = {
	{"BJ01", "bj01", "北京望京店", "北京", "一汽奥迪",
	 {"王磊", "李娜", "张强", "刘洋", "陈静"}},
	{"SH01", "sh01", "上海浦东店", "上海", "一汽奥迪",
	 {"杨帆", "赵敏", "黄涛", "周婷", "吴刚"}},
	{"GZ01", "gz01", "广州天河店", "广州", "广汽丰田",
	 {"徐明", "孙丽", "马超", "朱琳", "胡军"}},
};

#define DEMO_USERS (3 * 5 + 2)

struct demo_user {
	char username[64];
	const char *display_name;
	const char *role;
	const char *store;          /* NULL for group roles */
	char password[128];
	bool in_file;
};

/* Random letters and digits until the password policy is met (all of one
 * kind is possible, if unlikely). */
static void random_password(const char *username, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	do {
		for (int i = 0; i < DEMO_PASSWORD_LEN; i++)
			out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
		out[DEMO_PASSWORD_LEN] = '\0';
	} while (!ctl_password_check(username, out, NULL, 0));
}

static int demo_users(struct demo_user *u)
{
	int n = 0;
	for (size_t s = 0; s < sizeof demo_stores / sizeof demo_stores[0]; s++) {
		for (int r = 0; r < 5; r++, n++) {
			snprintf(u[n].username, sizeof u[n].username, "%s.%s",
				 demo_stores[s].prefix, demo_store_roles[r]);
			u[n].display_name = demo_stores[s].people[r];
			u[n].role = demo_store_roles[r];
			u[n].store = demo_stores[s].code;
		}
	}
	snprintf(u[n].username, sizeof u[n].username, "group.analyst");
	u[n].display_name = "郭晓";
	u[n].role = "group_analyst";
	n++;
	snprintf(u[n].username, sizeof u[n].username, "group.admin");
	u[n].display_name = "林峰";
	u[n].role = "group_admin";
	n++;
	return n;
}

/* Takes the passwords of listed demo users from an existing logins file.
 * False (after a message) when the file exists but cannot be read. */
static bool read_logins(const char *path, struct demo_user *u, int n, bool *existed)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		*existed = false;
		if (errno == ENOENT)
			return true;
		ctl_err("cannot read %s: %s", path, strerror(errno));
		return false;
	}
	*existed = true;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		char name[128], pw[128];
		if (sscanf(line, "%127s %127s", name, pw) != 2 || name[0] == '#')
			continue;
		for (int i = 0; i < n; i++) {
			if (!strcmp(u[i].username, name)) {
				snprintf(u[i].password, sizeof u[i].password, "%s", pw);
				u[i].in_file = true;
			}
		}
	}
	fclose(f);
	return true;
}

/* Replaces the file in one rename, created 0600 from the start. */
static bool write_logins(const char *path, const struct demo_user *u, int n)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		ctl_err("cannot create %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	for (int i = 0; i < n; i++)
		fprintf(f, "%s %s %s %s\n", u[i].username, u[i].password, u[i].role,
			u[i].store ? u[i].store : "-");
	bool ok = fflush(f) == 0 && fsync(fd) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return false;
	}
	return true;
}

int ctl_cmd_demo(const struct crm_config *cfg, int argc, char **argv)
{
	const char *logins = NULL;
	const struct ctl_opt opts[] = {{"logins", CTL_OPT_VALUE, &logins}, {NULL, 0, NULL}};
	int rc = ctl_parse("demo", argc, argv, opts);
	if (rc)
		return rc;
	if (!logins) {
		ctl_err("demo: --logins FILE is required (it receives the demo passwords)");
		return CTL_USAGE;
	}
	if (sodium_init() < 0) {
		ctl_err("libsodium failed to initialise");
		return CTL_FAIL;
	}
	struct demo_user users[DEMO_USERS];
	memset(users, 0, sizeof users);
	int n = demo_users(users);
	bool file_existed;
	if (!read_logins(logins, users, n, &file_existed))
		return CTL_FAIL;

	PGconn *db = ctl_admin_connect(cfg, cfg->db_name);
	if (!db)
		return CTL_FAIL;
	rc = CTL_FAIL;
	int stores_created = 0, created = 0, reset = 0, kept = 0;
	for (size_t s = 0; s < sizeof demo_stores / sizeof demo_stores[0]; s++) {
		const struct demo_store *d = &demo_stores[s];
		bool made;
		if (!ctl_store_add(db, DEMO_GROUP, d->code, d->name, d->city, d->brand, &made))
			goto out;
		if (made) {
			printf("created store %s %s (%s, %s)\n", d->code, d->name, d->city, d->brand);
			stores_created++;
		}
	}
	bool changed = !file_existed;
	for (int i = 0; i < n; i++) {
		struct demo_user *u = &users[i];
		const char *name = u->username;
		PGresult *res = ctl_query(db, "looking up a demo user",
					  "SELECT 1 FROM crm.users WHERE username = $1", 1, &name);
		if (!res)
			goto out;
		bool exists = PQntuples(res) > 0;
		PQclear(res);
		bool policy_ok = u->in_file && ctl_password_check(u->username, u->password, NULL, 0);
		if (exists && policy_ok) {
			kept++;
			continue;
		}
		if (!policy_ok) {
			random_password(u->username, u->password);
			changed = true;
		}
		enum ctl_user_outcome outcome;
		if (!ctl_user_add(db, u->username, u->display_name, u->role, u->store, u->password,
				  true, &outcome))
			goto out;
		if (outcome == CTL_USER_RESET) {
			printf("user %s existed without a line in %s: password reset\n", name, logins);
			reset++;
		} else {
			printf("created user %s (%s%s%s)\n", name, u->role, u->store ? ", store " : "",
			       u->store ? u->store : "");
			created++;
		}
	}
	if (changed && !write_logins(logins, users, n))
		goto out;
	printf("demo: %d stores (%d new), %d users (%d new, %d reset, %d kept); logins in %s\n",
	       (int)(sizeof demo_stores / sizeof demo_stores[0]), stores_created, n, created,
	       reset, kept, logins);
	rc = CTL_OK;
out:
	sodium_memzero(users, sizeof users);
	PQfinish(db);
	return rc;
}
