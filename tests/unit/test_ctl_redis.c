/*
 * test_ctl_redis.c - Redis cleanup of GCS fault-tolerance keys, against a
 * real redis-server started here on a free port of 127.0.0.1 with
 * requirepass (skipped with a message when redis-server is missing).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "redis_cleanup.h"
#include "rw/log.h"
#include "rwtest.h"

extern char **environ;

#define PASS "s3cret-Redis-pw"
#define NS_UUID "864b004c-6305-42e3-ac46-adfa8eb6f752"
#define NS_ODD "we*ird[ns]-x?^\\"

static const char *redis_bin;

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
free_port(void)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A connected, authenticated synchronous client, or NULL. */
static redisContext *
rconn(int port)
{
	struct timeval tv = {1, 0};
	redisContext *r = redisConnectWithTimeout("127.0.0.1", port, tv);
	if (!r || r->err) {
		if (r)
			redisFree(r);
		return NULL;
	}
	redisReply *rep = redisCommand(r, "AUTH %s", PASS);
	int ok = rep && rep->type == REDIS_REPLY_STATUS;
	if (rep)
		freeReplyObject(rep);
	if (!ok) {
		redisFree(r);
		return NULL;
	}
	return r;
}

struct redis {
	pid_t pid;
	int port;
};

/* Start redis-server on port and wait (bounded) until it answers. */
static int
redis_start(struct redis *rs, int port)
{
	char portstr[16];
	posix_spawn_file_actions_t fa;
	snprintf(portstr, sizeof(portstr), "%d", port);
	char *argv[] = {(char *)redis_bin,
			"--port",
			portstr,
			"--bind",
			"127.0.0.1",
			"--requirepass",
			PASS,
			"--save",
			"",
			"--appendonly",
			"no",
			"--daemonize",
			"no",
			"--protected-mode",
			"yes",
			NULL};
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int rv = posix_spawn(&rs->pid, redis_bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	rs->port = port;
	if (rv != 0) {
		rs->pid = 0;
		return -rv;
	}
	double end = mono_ms() + 10000;
	while (mono_ms() < end) {
		redisContext *r = rconn(port);
		if (r) {
			redisFree(r);
			return 0;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static void
redis_stop(struct redis *rs)
{
	int st;
	if (rs->pid <= 0)
		return;
	kill(rs->pid, SIGTERM);
	double end = mono_ms() + 5000;
	while (waitpid(rs->pid, &st, WNOHANG) == 0) {
		if (mono_ms() > end) {
			kill(rs->pid, SIGKILL);
			waitpid(rs->pid, &st, 0);
			break;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	rs->pid = 0;
}

static void
cmd(redisContext *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(r, fmt, ap);
	va_end(ap);
	CHECK(rep != NULL && rep->type != REDIS_REPLY_ERROR);
	if (rep)
		freeReplyObject(rep);
}

static long long
icmd(redisContext *r, const char *fmt, ...)
{
	va_list ap;
	long long v = -1;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(r, fmt, ap);
	va_end(ap);
	if (rep && rep->type == REDIS_REPLY_INTEGER)
		v = rep->integer;
	if (rep)
		freeReplyObject(rep);
	return v;
}

/* Ray's layout for one namespace: table hashes plus the JobCounter string. 5 keys. */
static void
populate_ray(redisContext *r, const char *ns)
{
	static const char *tables[] = {"NODE", "JOB", "ACTOR", "KV"};
	char key[512];
	for (size_t i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "RAY%s@%s", ns, tables[i]);
		cmd(r, "HSET %s %b %s", key, "\x01\x02\x00\xff", (size_t)4, "row");
	}
	snprintf(key, sizeof(key), "RAY%s@JobCounter", ns);
	cmd(r, "INCRBY %s 1", key);
}

/* Keys that a wrong or unescaped pattern would catch; they must survive. 5 keys. */
static const char *const decoys[] = {
    "RAYweQQirdn-x?^\\@NODE",			   /* matches "RAYwe*ird[ns]-x?^\@*" unescaped */
    "RAY864b004c-6305-42e3-ac46-adfa8eb6f75@NODE", /* ns one character short */
    NS_UUID,					   /* the pre-2.36 single hash */
    "RAY" NS_UUID,				   /* no '@' */
    "other@RAY" NS_UUID "@NODE",		   /* prefix not at the start */
};
#define NDECOYS 5

static void
populate_decoys(redisContext *r)
{
	for (int i = 0; i < NDECOYS; i++)
		cmd(r, "SET %s decoy", decoys[i]);
}

static int
decoys_left(redisContext *r)
{
	int n = 0;
	for (int i = 0; i < NDECOYS; i++)
		n += icmd(r, "EXISTS %s", decoys[i]) == 1;
	return n;
}

static int
ns_keys_left(redisContext *r, const char *ns)
{
	static const char *tables[] = {"NODE", "JOB", "ACTOR", "KV", "JobCounter"};
	char key[512];
	int n = 0;
	for (size_t i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "RAY%s@%s", ns, tables[i]);
		n += icmd(r, "EXISTS %s", key) == 1;
	}
	return n;
}

/* ---- running a cleanup to completion ---- */

struct outcome {
	int calls;
	struct rw_redis_cleanup_result res;
};

static void
done_cb(const struct rw_redis_cleanup_result *res, void *ud)
{
	struct outcome *o = ud;
	o->calls++;
	o->res = *res;
}

static void
watchdog_cb(uv_timer_t *t)
{
	fprintf(stderr, "  watchdog: the cleanup did not finish\n");
	rwt_failed = 1;
	uv_stop(t->loop);
}

/* Run the loop until everything the cleanup opened is closed (bounded). */
static void
run_loop(uv_loop_t *loop, unsigned limit_ms)
{
	uv_timer_t wd;
	uv_timer_init(loop, &wd);
	uv_timer_start(&wd, watchdog_cb, limit_ms, 0);
	uv_unref((uv_handle_t *)&wd);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&wd, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
}

static int
run_cleanup(const struct rw_redis_cleanup_opts *o, struct outcome *out, unsigned limit_ms)
{
	uv_loop_t loop;
	struct rw_redis_cleanup *h = NULL;
	memset(out, 0, sizeof(*out));
	uv_loop_init(&loop);
	int rv = rw_redis_cleanup_start(&loop, o, done_cb, out, &h);
	CHECK_EQ_INT(rv, 0);
	CHECK_EQ_INT(out->calls, 0); /* never from within start */
	if (rv == 0)
		run_loop(&loop, limit_ms);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	return rv;
}

/* ---- cases ---- */

static void
t_pattern(void)
{
	static const struct {
		const char *ns, *want;
	} cases[] = {
	    {NS_UUID, "RAY864b004c\\-6305\\-42e3\\-ac46\\-adfa8eb6f752@*"},
	    {"default", "RAYdefault@*"},
	    {"a*b[c]", "RAYa\\*b\\[c\\]@*"},
	    {"q?^\\", "RAYq\\?\\^\\\\@*"},
	};
	char out[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_EQ_INT(rw_redis_cleanup_pattern(cases[i].ns, out, sizeof(out)), 0);
		CHECK_EQ_STR(out, cases[i].want);
	}
	CHECK_EQ_INT(rw_redis_cleanup_pattern("", out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(rw_redis_cleanup_pattern("a@b", out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(rw_redis_cleanup_pattern("a-b-c", out, 10), -ENAMETOOLONG);
}

static void
t_address(void)
{
	static const struct {
		const char *in;
		int rv;
		const char *host;
		int port;
		const char *user, *pass;
		int tls;
	} cases[] = {
	    {"redis:6379", 0, "redis", 6379, NULL, NULL, 0},
	    {"redis-master.redis.svc.cluster.local:6380", 0, "redis-master.redis.svc.cluster.local",
	     6380, NULL, NULL, 0},
	    {"redis://Redis:7000", 0, "redis", 7000, NULL, NULL, 0},
	    {"redis://:pw@10.0.0.1:6379", 0, "10.0.0.1", 6379, "", "pw", 0},
	    {"redis://alice:p%40ss:w@h:1/0", 0, "h", 1, "alice", "p%40ss:w", 0},
	    {"redis://bob@h", 0, "h", 6379, "bob", NULL, 0},
	    {"a:1,b:2", 0, "a", 1, NULL, NULL, 0},
	    {"[::1]:6379", 0, "::1", 6379, NULL, NULL, 0},
	    {"redis://u:p@[fd00::5]:7001", 0, "fd00::5", 7001, "u", "p", 0},
	    {"rediss://h:6379", 0, "h", 6379, NULL, NULL, 1},
	    {"h", 0, "h", 6379, NULL, NULL, 0},
	    {"", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {"http://h:1", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {"h:99999", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {"h:port", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {"bad\x1b[2Jhost:6379", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {"redis://u:p@a b:1", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {"h\xc3\xa9:1", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {"h:", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {":6379", -EINVAL, NULL, 0, NULL, NULL, 0},
	    {"[::1", -EINVAL, NULL, 0, NULL, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rw_redis_cleanup_addr a;
		int rv = rw_redis_cleanup_parse_address(cases[i].in, &a);
		if (rv != cases[i].rv)
			fprintf(stderr, "  address \"%s\"\n", cases[i].in);
		CHECK_EQ_INT(rv, cases[i].rv);
		if (rv != 0 || cases[i].rv != 0)
			continue;
		CHECK_EQ_STR(a.host, cases[i].host);
		CHECK_EQ_INT(a.port, cases[i].port);
		CHECK_EQ_INT(a.has_user, cases[i].user != NULL);
		if (cases[i].user)
			CHECK_EQ_STR(a.username, cases[i].user);
		CHECK_EQ_INT(a.has_password, cases[i].pass != NULL);
		if (cases[i].pass)
			CHECK_EQ_STR(a.password, cases[i].pass);
		CHECK_EQ_INT(a.tls, cases[i].tls);
	}
}

static void
t_bad_start(void)
{
	uv_loop_t loop;
	struct rw_redis_cleanup *h = NULL;
	struct outcome out = {0};
	struct rw_redis_cleanup_opts o = {.address = "rediss://h:6379", .storage_ns = "x"};
	uv_loop_init(&loop);
	CHECK_EQ_INT(rw_redis_cleanup_start(&loop, &o, done_cb, &out, &h), -EPROTONOSUPPORT);
	o.address = "h:6379";
	o.storage_ns = "a@b";
	CHECK_EQ_INT(rw_redis_cleanup_start(&loop, &o, done_cb, &out, &h), -EINVAL);
	o.storage_ns = "";
	CHECK_EQ_INT(rw_redis_cleanup_start(&loop, &o, done_cb, &out, &h), -EINVAL);
	o.storage_ns = NULL;
	CHECK_EQ_INT(rw_redis_cleanup_start(&loop, &o, done_cb, &out, &h), -EINVAL);
	CHECK(h == NULL);
	CHECK_EQ_INT(out.calls, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static struct redis shared;

static void
t_only_target_namespace(void)
{
	redisContext *r = rconn(shared.port);
	struct outcome out;
	char addr[128];

	CHECK(r != NULL);
	if (!r)
		return;
	cmd(r, "FLUSHALL");
	populate_ray(r, NS_UUID);
	populate_ray(r, NS_ODD);
	populate_decoys(r);
	CHECK_EQ_INT(icmd(r, "DBSIZE"), 15);

	/* The odd namespace first, password from the URL. */
	snprintf(addr, sizeof(addr), "redis://:%s@127.0.0.1:%d", PASS, shared.port);
	struct rw_redis_cleanup_opts o = {.address = addr,
					  .storage_ns = NS_ODD,
					  .deadline_ms = 10000,
					  .connect_timeout_ms = 2000,
					  .command_timeout_ms = 2000};
	run_cleanup(&o, &out, 15000);
	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(out.res.ok, 1);
	CHECK_EQ_STR(out.res.error, "");
	CHECK_EQ_INT(out.res.keys_deleted, 5);
	CHECK_EQ_INT(out.res.attempts, 1);
	CHECK_EQ_INT(ns_keys_left(r, NS_ODD), 0);
	CHECK_EQ_INT(ns_keys_left(r, NS_UUID), 5);
	CHECK_EQ_INT(decoys_left(r), NDECOYS);

	/* The UUID namespace as an ACL user (AUTH user pass); a comma list address. */
	cmd(r, "ACL SETUSER cleaner on >cleaner-pw ~* +@all");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d,127.0.0.1:1", shared.port);
	o.address = addr;
	o.storage_ns = NS_UUID;
	o.username = "cleaner";
	o.password = "cleaner-pw";
	run_cleanup(&o, &out, 15000);
	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(out.res.ok, 1);
	CHECK_EQ_INT(out.res.keys_deleted, 5);
	CHECK_EQ_INT(ns_keys_left(r, NS_UUID), 0);
	CHECK_EQ_INT(decoys_left(r), NDECOYS);
	CHECK_EQ_INT(icmd(r, "DBSIZE"), NDECOYS);

	/* Nothing left to delete is a success too. */
	run_cleanup(&o, &out, 15000);
	CHECK_EQ_INT(out.res.ok, 1);
	CHECK_EQ_INT(out.res.keys_deleted, 0);
	redisFree(r);
}

static void
t_wrong_password(void)
{
	redisContext *r = rconn(shared.port);
	struct outcome out;
	char addr[64], logpath[] = "/tmp/rw-rcl-log-XXXXXX";

	CHECK(r != NULL);
	if (!r)
		return;
	cmd(r, "FLUSHALL");
	populate_ray(r, NS_UUID);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", shared.port);
	struct rw_redis_cleanup_opts o = {.address = addr,
					  .password = "wrong-pass-7c1f",
					  .storage_ns = NS_UUID,
					  .deadline_ms = 1500,
					  .backoff_min_ms = 50,
					  .backoff_max_ms = 200};

	/* Capture this run's log lines to check that no password shows up. */
	int logfd = mkstemp(logpath);
	int saved = dup(2);
	CHECK(logfd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(logfd, 2);
	double t0 = mono_ms();
	run_cleanup(&o, &out, 10000);
	double took = mono_ms() - t0;
	fflush(stderr);
	dup2(saved, 2);
	close(saved);

	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(out.res.ok, 0);
	CHECK_EQ_INT(out.res.deadline_exceeded, 1);
	CHECK(out.res.attempts >= 2);
	CHECK(strstr(out.res.error, "deadline") != NULL);
	CHECK(strstr(out.res.error, "AUTH") != NULL);
	CHECK(strstr(out.res.error, "WRONGPASS") != NULL || strstr(out.res.error, "invalid"));
	CHECK(strstr(out.res.error, "wrong-pass-7c1f") == NULL);
	CHECK(took >= 1400 && took < 5000);
	CHECK_EQ_INT(ns_keys_left(r, NS_UUID), 5);

	char logbuf[16384];
	ssize_t n = pread(logfd, logbuf, sizeof(logbuf) - 1, 0);
	close(logfd);
	unlink(logpath);
	CHECK(n > 0);
	if (n > 0) {
		logbuf[n] = '\0';
		CHECK(strstr(logbuf, "AUTH") != NULL);		  /* the attempts were logged... */
		CHECK(strstr(logbuf, "wrong-pass-7c1f") == NULL); /* ...without the password */
		CHECK(strstr(logbuf, PASS) == NULL);
	}
	printf("  wrong password: %u attempts, gave up after %.0f ms: %s\n", out.res.attempts, took,
	       out.res.error);
	redisFree(r);
}

static void
t_redis_down(void)
{
	struct outcome out;
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
	struct rw_redis_cleanup_opts o = {.address = addr,
					  .password = PASS,
					  .storage_ns = NS_UUID,
					  .deadline_ms = 1000,
					  .backoff_min_ms = 50,
					  .backoff_max_ms = 200};
	double t0 = mono_ms();
	run_cleanup(&o, &out, 10000);
	double took = mono_ms() - t0;
	CHECK_EQ_INT(out.calls, 1); /* the loop ran dry: no second call can come */
	CHECK_EQ_INT(out.res.ok, 0);
	CHECK_EQ_INT(out.res.deadline_exceeded, 1);
	CHECK(out.res.attempts >= 3);
	CHECK(strstr(out.res.error, "refused") != NULL);
	CHECK(took >= 950 && took < 3000);
	printf("  redis down: %u attempts in %.0f ms: %s\n", out.res.attempts, took, out.res.error);
}

/* A server that accepts connections (kernel backlog) and never answers. */
static void
t_command_timeout(void)
{
	struct outcome out;
	char addr[64];
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 16) == 0 &&
	      getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	struct rw_redis_cleanup_opts o = {.address = addr,
					  .password = PASS,
					  .storage_ns = NS_UUID,
					  .command_timeout_ms = 200,
					  .deadline_ms = 1200,
					  .backoff_min_ms = 50,
					  .backoff_max_ms = 100};
	run_cleanup(&o, &out, 10000);
	close(fd);
	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(out.res.deadline_exceeded, 1);
	CHECK(out.res.attempts >= 2);
	CHECK(strstr(out.res.error, "AUTH timed out after 200 ms") != NULL);
	printf("  silent server: %u attempts: %s\n", out.res.attempts, out.res.error);
}

/* ---- error texts from Redis or the network ---- */

static bool
printable_ascii(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7E)
			return false;
	return true;
}

static void
t_clean_text(void)
{
	static char big[10240 + 64], split[64];
	static const char *const secrets[] = {PASS, NULL};
	memset(big, 'A', 10240);
	memcpy(big + 5000, PASS, strlen(PASS)); /* far past any cut */
	big[10240] = '\0';
	snprintf(split, sizeof(split), "s3c\x1b[0mret-\x01Redis\x7f-pw tail");
	static const struct {
		const char *in;
		size_t max;
		const char *want;
	} cases[] = {
	    {"WRONGPASS invalid username-password pair", 200,
	     "WRONGPASS invalid username-password pair"},
	    {"ERR bad\x00\x01\x02thing\r\n\tmore  spaces ", 200, "ERR badthing more spaces"},
	    {"\x1b[31;1mWRONGPASS\x1b[0m invalid", 200, "WRONGPASS invalid"},
	    {"\x1b]0;owned\x07title\x1b]8;;http://x\x1b\\link", 200, "titlelink"},
	    {"\x1b"
	     "c\x1b(Breset",
	     200, "reset"},
	    {"caf\xc3\xa9 \xff\xfe\xfd ok", 200, "caf? ? ok"},
	    {"ERR unknown command `AUTH`, with args beginning with: `" PASS "`,", 200,
	     "ERR unknown command `AUTH`, with args beginning with: `***`,"},
	    {PASS PASS, 200, "******"},
	    {NULL /* split */, 200, "*** tail"},
	    {"0123456789abcdef", 10, "0123456..."},
	    {"0123456789", 10, "0123456789"},
	    {"01234 6789abc", 9, "01234..."},
	    {"x" PASS "y", 5, "x***y"},
	    {"x" PASS "y", 4, "x..."},
	    {"", 10, ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in ? cases[i].in : split;
		size_t len = cases[i].in ? strlen(in) : strlen(split);
		char out[256];
		if (i == 1)
			len = 31; /* with the NUL and control bytes */
		rw_redis_cleanup_clean_text(in, len, secrets, cases[i].max, out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0)
			fprintf(stderr, "  case %zu: got \"%s\"\n", i, out);
		CHECK_EQ_STR(out, cases[i].want);
	}
	/* 10 KB with the password inside: cut to 80, printable, no password. */
	char out[96];
	rw_redis_cleanup_clean_text(big, strlen(big), secrets, 80, out, sizeof(out));
	CHECK_EQ_INT(strlen(out), 80);
	CHECK(printable_ascii(out));
	CHECK(strcmp(out + 77, "...") == 0);
	/* The output buffer bounds the result too. */
	char small[8];
	rw_redis_cleanup_clean_text(big, strlen(big), secrets, 1000, small, sizeof(small));
	CHECK_EQ_STR(small, "AAAA...");
	/* Causes from the error code. */
	static const struct {
		const char *reply, *cause;
	} cls[] = {
	    {"WRONGPASS invalid username-password pair or user is disabled.",
	     "authentication failed"},
	    {"NOAUTH Authentication required.", "authentication failed"},
	    {"ERR invalid password", "authentication failed"},
	    {"ERR invalid username-password pair", "authentication failed"},
	    {"NOPERM this user has no permissions to run the 'scan' command", "permission denied"},
	    {"LOADING Redis is loading the dataset in memory", "server not ready"},
	    {"READONLY You can't write against a read only replica.", "read-only replica"},
	    {"OOM command not allowed when used memory > 'maxmemory'.", "server out of memory"},
	    {"ERR unknown command 'UNLINK'", "server error"},
	    {"WRONGPASSX", "server error"},
	    {"", "server error"},
	};
	for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++)
		CHECK_EQ_STR(rw_redis_cleanup_classify_reply(cls[i].reply, strlen(cls[i].reply)),
			     cls[i].cause);
}

/* A "server" that answers every command with a hostile error reply and closes. */
struct hostile {
	int fd;
	int conns;
};

static void *
hostile_main(void *arg)
{
	struct hostile *h = arg;
	static char reply[16384];
	size_t n = 0;
	n += (size_t)snprintf(
	    reply + n, sizeof(reply) - n,
	    "-ERR \x1b[31mAUTH\x1b[0m\x07 failed for `%s` and s3c\x1b[0mret-Redis-pw ", PASS);
	while (n < 10240) {
		static const char junk[] = "\x1b[2J\x1b]0;pwned\x07\x01\x02\x03\xff" PASS " ";
		memcpy(reply + n, junk, sizeof(junk) - 1);
		n += sizeof(junk) - 1;
	}
	memcpy(reply + n, "\r\n", 2);
	n += 2;
	for (;;) {
		char buf[4096];
		int c = accept(h->fd, NULL, NULL);
		if (c < 0)
			return NULL; /* the test closed the socket */
		h->conns++;
		if (read(c, buf, sizeof(buf)) > 0 && write(c, reply, n) < 0)
			(void)0;
		close(c);
	}
}

static void
t_hostile_server(void)
{
	struct outcome out;
	struct hostile h = {0};
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	pthread_t th;
	char addr[64], logpath[] = "/tmp/rw-rcl-log-XXXXXX";
	h.fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(h.fd >= 0 && bind(h.fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	      listen(h.fd, 16) == 0 && getsockname(h.fd, (struct sockaddr *)&sa, &len) == 0);
	CHECK_EQ_INT(pthread_create(&th, NULL, hostile_main, &h), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	struct rw_redis_cleanup_opts o = {.address = addr,
					  .password = PASS,
					  .storage_ns = NS_UUID,
					  .deadline_ms = 800,
					  .backoff_min_ms = 50,
					  .backoff_max_ms = 100};
	int logfd = mkstemp(logpath);
	int saved = dup(2);
	CHECK(logfd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(logfd, 2);
	run_cleanup(&o, &out, 10000);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	shutdown(h.fd, SHUT_RDWR);
	close(h.fd);
	pthread_join(th, NULL);

	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(out.res.deadline_exceeded, 1);
	CHECK(h.conns >= 1);
	CHECK(printable_ascii(out.res.error));
	CHECK(strlen(out.res.error) < sizeof(out.res.error));
	CHECK(strstr(out.res.error, PASS) == NULL);
	CHECK(strstr(out.res.error, "s3cret") == NULL);
	CHECK(strstr(out.res.error, "AUTH: server error (server said: ERR AUTH failed for `***`") !=
	      NULL);
	printf("  hostile server: %s\n", out.res.error);

	static char logbuf[65536];
	ssize_t n = pread(logfd, logbuf, sizeof(logbuf) - 1, 0);
	close(logfd);
	unlink(logpath);
	CHECK(n > 0);
	if (n > 0) {
		logbuf[n] = '\0';
		CHECK(strstr(logbuf, "server error") != NULL);
		CHECK(strstr(logbuf, PASS) == NULL);
		CHECK(strchr(logbuf, '\x1b') == NULL);
		CHECK((size_t)n < 8192); /* no 10 KB replies in the log */
	}
}

struct later {
	int port;
	struct redis rs;
	int started;
};

static void
start_later_cb(uv_timer_t *t)
{
	struct later *l = t->data;
	/* Blocking here is fine in a test: the cleanup waits in its back-off. */
	if (redis_start(&l->rs, l->port) == 0) {
		redisContext *r = rconn(l->port);
		if (r) {
			populate_ray(r, NS_UUID);
			populate_decoys(r);
			redisFree(r);
			l->started = 1;
		}
	}
	uv_close((uv_handle_t *)t, NULL);
}

static void
t_redis_later(void)
{
	uv_loop_t loop;
	uv_timer_t t;
	struct rw_redis_cleanup *h = NULL;
	struct outcome out = {0};
	struct later l = {.port = free_port()};
	char addr[64];

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", l.port);
	struct rw_redis_cleanup_opts o = {.address = addr,
					  .password = PASS,
					  .storage_ns = NS_UUID,
					  .deadline_ms = 15000,
					  .backoff_min_ms = 50,
					  .backoff_max_ms = 200};
	uv_loop_init(&loop);
	uv_timer_init(&loop, &t);
	t.data = &l;
	uv_timer_start(&t, start_later_cb, 500, 0);
	CHECK_EQ_INT(rw_redis_cleanup_start(&loop, &o, done_cb, &out, &h), 0);
	run_loop(&loop, 30000);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
	CHECK_EQ_INT(l.started, 1);
	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(out.res.ok, 1);
	CHECK_EQ_INT(out.res.keys_deleted, 5);
	CHECK(out.res.attempts >= 2);
	redisContext *r = rconn(l.port);
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_INT(ns_keys_left(r, NS_UUID), 0);
		CHECK_EQ_INT(decoys_left(r), NDECOYS);
		redisFree(r);
	}
	printf("  redis started 500 ms late: success after %u attempts, %llu ms\n",
	       out.res.attempts, (unsigned long long)out.res.elapsed_ms);
	redis_stop(&l.rs);
}

static void
t_cancel(void)
{
	uv_loop_t loop;
	struct rw_redis_cleanup *h = NULL;
	struct outcome out = {0};
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_port());
	struct rw_redis_cleanup_opts o = {
	    .address = addr, .storage_ns = NS_UUID, .backoff_min_ms = 50};
	uv_loop_init(&loop);
	CHECK_EQ_INT(rw_redis_cleanup_start(&loop, &o, done_cb, &out, &h), 0);
	for (int i = 0; i < 20; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	CHECK_EQ_INT(out.calls, 0);
	rw_redis_cleanup_cancel(h);
	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(out.res.cancelled, 1);
	CHECK_EQ_INT(out.res.ok, 0);
	run_loop(&loop, 5000);
	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void
t_20000_keys(void)
{
	enum { NKEYS = 20000 };
	redisContext *r = rconn(shared.port);
	struct outcome out;
	char addr[64], key[256];

	CHECK(r != NULL);
	if (!r)
		return;
	cmd(r, "FLUSHALL");
	/* Pipelined: 19,999 hashes and the JobCounter string. */
	for (int i = 0; i < NKEYS - 1; i++) {
		snprintf(key, sizeof(key), "RAY%s@T%05d", NS_UUID, i);
		redisAppendCommand(r, "HSET %s f v", key);
	}
	snprintf(key, sizeof(key), "RAY%s@JobCounter", NS_UUID);
	redisAppendCommand(r, "INCRBY %s 1", key);
	for (int i = 0; i < NKEYS; i++) {
		void *rep = NULL;
		if (redisGetReply(r, &rep) != REDIS_OK)
			break;
		freeReplyObject(rep);
	}
	populate_decoys(r);
	populate_ray(r, NS_ODD);
	CHECK_EQ_INT(icmd(r, "DBSIZE"), NKEYS + NDECOYS + 5);

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", shared.port);
	struct rw_redis_cleanup_opts o = {.address = addr, .password = PASS, .storage_ns = NS_UUID};
	double t0 = mono_ms();
	run_cleanup(&o, &out, 60000);
	double took = mono_ms() - t0;
	CHECK_EQ_INT(out.calls, 1);
	CHECK_EQ_INT(out.res.ok, 1);
	CHECK_EQ_INT(out.res.keys_deleted, NKEYS);
	CHECK_EQ_INT(icmd(r, "DBSIZE"), NDECOYS + 5);
	CHECK_EQ_INT(ns_keys_left(r, NS_ODD), 5);
	printf("  %d keys deleted in %.0f ms (SCAN COUNT 1000 + UNLINK per page)\n", NKEYS, took);
	redisFree(r);
}

static const char *
find_redis(void)
{
	static char path[512];
	const char *env = getenv("RW_REDIS_SERVER");
	if (env && access(env, X_OK) == 0)
		return env;
	const char *p = getenv("PATH");
	if (!p)
		p = "/usr/bin:/bin";
	while (*p) {
		size_t n = strcspn(p, ":");
		snprintf(path, sizeof(path), "%.*s/redis-server", (int)n, p);
		if (access(path, X_OK) == 0)
			return path;
		p += n;
		if (*p == ':')
			p++;
	}
	return NULL;
}

int
main(void)
{
	static const struct rwt_case pure[] = {
	    {"pattern escaping", t_pattern},
	    {"address parsing", t_address},
	    {"bad start arguments", t_bad_start},
	    {"redis down: deadline", t_redis_down},
	    {"silent server: command timeout", t_command_timeout},
	    {"cancel", t_cancel},
	    {"error texts: cleaned, cut, classified", t_clean_text},
	    {"hostile server: reply cleaned before Events and logs", t_hostile_server},
	    {NULL, NULL},
	};
	static const struct rwt_case with_redis[] = {
	    {"only the target namespace", t_only_target_namespace},
	    {"wrong password: error, then deadline", t_wrong_password},
	    {"redis started later: success on retry", t_redis_later},
	    {"20,000 keys", t_20000_keys},
	    {NULL, NULL},
	};
	int rv;

	signal(SIGPIPE, SIG_IGN);
	rw_log_setup("test_ctl_redis", RW_LOG_TEXT, RW_LOG_INFO);
	rv = rwt_run(pure);
	redis_bin = find_redis();
	if (!redis_bin) {
		printf("SKIP: redis-server not found in PATH; the Redis cases did not run\n");
		return rv;
	}
	if (redis_start(&shared, free_port()) != 0) {
		printf("FAIL: could not start %s\n", redis_bin);
		redis_stop(&shared);
		return 1;
	}
	rv |= rwt_run(with_redis);
	redis_stop(&shared);
	return rv;
}
