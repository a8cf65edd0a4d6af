/*
 * agent.h - the running agent: one libuv loop owning the probes, the
 * readiness state machine, the HTTP endpoints, the controller reporter and
 * the actions the controller asks for. Internal to agent/.
 */
#ifndef RW_AGENT_H
#define RW_AGENT_H

#include <stdatomic.h>
#include <stdint.h>

#include <nng/nng.h>
#include <uv.h>

#include "classify.h"
#include "config.h"
#include "readiness.h"
#include "rw/buf.h"
#include "rw/http.h"
#include "rw/httpd.h"
#include "rw/keyfile.h"
#include "rw/wire.h"

#define RW_LAT_BUCKETS 10

struct rw_agent;
struct rw_lprobe;

/* One periodically probed endpoint. */
struct rw_agent_probe {
	struct rw_agent *a;
	enum rw_probe_kind kind;
	int enabled;
	char url[320];
	size_t max_body;
	long period_ms;
	uint64_t next_ms; /* loop time of the next start */
	struct rw_http_call *call;
	struct rw_lprobe *light;      /* own keep-alive client for this probe (probe.c), or NULL */
	unsigned long light_connects; /* connections it opened */
	uint64_t started_ms;
	uint64_t event_ms;    /* loop time of the last probe started by a hang-up */
	uint64_t event_since; /* the component's state-change time at that moment */
	/* metrics */
	unsigned long conn_events;  /* idle connections that hung up */
	unsigned long event_probes; /* probes started at once because of one */
	unsigned long results[RW_PROBE_DISABLED + 1];
	unsigned long lat_bucket[RW_LAT_BUCKETS + 1];
	double lat_sum_s;
	unsigned long lat_count;
	double last_ms;
};

/* Why a reply was refused (metrics label). */
enum rw_refuse {
	RW_REF_SIZE = 0,
	RW_REF_MALFORMED,
	RW_REF_VERSION,
	RW_REF_KEY,
	RW_REF_MAC,
	RW_REF_TYPE,
	RW_REF_SESSION,
	RW_REF_SEQ,
	RW_REF_PAYLOAD,
	RW_REF_COUNT
};

struct rw_reporter {
	int enabled;
	nng_socket sock;
	int sock_open;
	uv_poll_t recv_poll, send_poll;
	int recv_poll_on, send_poll_init, send_polling;
	uv_timer_t heartbeat, retry;
	struct rw_wire_key key; /* the current cluster key (keys.c loads it) */
	struct rw_wire_key
	    prev_key; /* the one before a reload: replies sealed with it still open */
	int have_prev;
	uint64_t session;
	uint64_t seq;	 /* of the outstanding request (0: none yet) */
	int outstanding; /* a request is waiting for its reply */
	long heartbeat_ms;
	struct rw_buf payload, msg;
	uint64_t last_send_ms, last_ack_ms;
	atomic_int pipes; /* connected pipes, updated from nng's threads */
	int pipes_seen;	  /* last value the loop logged */
	unsigned long sent, acked, blocked, encode_failed;
	unsigned long refused[RW_REF_COUNT];
	int last_refuse_logged;
	uint64_t last_refuse_log_ms;
};

enum rw_submit_state { RW_SUB_NONE = 0, RW_SUB_SUBMITTING, RW_SUB_DONE, RW_SUB_FAILED };

/* The driver log tail of a job: read once the job has ended, then reported once. */
enum rw_tail_state {
	RW_TAIL_NONE = 0, /* not ended yet (or no log to read: GONE) */
	RW_TAIL_WANT,	  /* ended: the log is to be read */
	RW_TAIL_FETCHING, /* GET /api/jobs/<id>/logs in flight */
	RW_TAIL_READY,	  /* read (or failed, see info.log_error): to be reported */
	RW_TAIL_SENT,	  /* a reply acknowledged a report that carried it */
};

struct rw_logtail;

struct rw_agent_job {
	struct rw_agent *a;
	int used;
	char id[RW_ID_MAX];
	enum rw_submit_state submit;
	struct rw_http_call *submit_call, *stop_call, *get_call, *log_call;
	int stop_requested, stop_done;
	int watched; /* the controller asked to track it (watch_jobs) */
	int seen;    /* Ray has shown it to this agent (or accepted its submission) */
	uint64_t retry_at_ms;
	unsigned attempts;
	struct rw_job info; /* what is reported (its log_tail stays NULL: see tail) */
	uint64_t touched_ms;
	enum rw_tail_state tail_state;
	struct rw_logtail *lt;	  /* the log reader while FETCHING */
	uint64_t log_bytes;	  /* bytes of the log answer read */
	unsigned long read_round; /* the jobs timer round of its last status read */
	char *tail;		  /* READY: the tail to report (owned), or NULL */
	int in_build;		  /* the last report built carried the tail */
	uint64_t final_seq;	  /* seq of the last report sent with the job's final state */
	int reported;		  /* a reply acknowledged such a report */
};

struct rw_serve_apply {
	char hash[72];	/* of the config being applied / applied */
	char *config;	/* JSON text (owned) */
	int has_apps;	/* the config deploys at least one application */
	char state[16]; /* "", applying, applied, failed */
	char error[RW_MSG_MAX];
	struct rw_http_call *call;
	uint64_t retry_at_ms;
	unsigned attempts;
	uint64_t applied_at_ms; /* loop time the last PUT succeeded */
	int empty_seen;		/* consecutive GETs with no apps after an apply */
	unsigned long ok, failed, reapplied;
};

/*
 * The cluster key file and what the agent derives from it (keys.c): re-read
 * when the file changes (a Secret volume update), and the /drain tokens it
 * accepts: the start-up key's (the one the pod spec's preStop hook was
 * built with) and those of the last RW_DRAIN_TOKENS - 1 keys loaded since.
 */
#define RW_DRAIN_TOKENS 4
enum rw_drain_refusal {
	RW_DRAIN_NO_KEY = 0,
	RW_DRAIN_UNAUTHENTICATED,
	RW_DRAIN_FORBIDDEN,
	RW_DRAIN_NREF
};

struct rw_agent_keys {
	int have; /* a key is loaded */
	struct rw_keyfile_sig sig;
	uint64_t next_check_ms;
	char drain[RW_DRAIN_TOKENS][RW_DRAIN_TOKEN_LEN + 1]; /* [0]: start-up key; "" unused */
	int next_slot;					     /* 1..RW_DRAIN_TOKENS-1 */
	unsigned long reloads, reload_failed;
	unsigned long drain_refused[RW_DRAIN_NREF];
	uint64_t last_refusal_log_ms;
};

/* At most this many /drain answers are held at once (one per container hook, with room). */
#define RW_DRAIN_HELD_MAX 4
/* Longest /drain hold (seconds); the kubelet abandons a hook at the grace period anyway. */
#define RW_DRAIN_MAX_S 3600

struct rw_agent {
	struct rw_agent_config cfg;
	uv_loop_t *loop;
	uint64_t wall0_ms, mono0_ms;
	uv_timer_t tick, kick;
	uv_signal_t sigterm, sigint;
	int stopping;
	int exit_code;

	struct rw_http *http;
	struct rw_httpd *httpd;
	struct rw_readiness rd;
	struct rw_agent_probe probes[RW_KIND_COUNT];
	long tick_ms; /* the shortest probe period */

	/* head: serve applications */
	struct rw_probe serve_api;
	struct rw_serve_status serve;
	int have_serve;
	uint64_t serve_req_started_ms;

	struct rw_reporter rep;
	int proxy_expected;
	struct rw_serve_apply apply;
	struct rw_agent_job jobs[RW_MAX_JOBS];
	uv_timer_t jobs_timer; /* job status reads and log reads, while any has work */
	int jobs_timer_on;
	unsigned long jobs_round; /* jobs timer ticks so far */
	char job_action_error[RW_MSG_MAX];
	struct rw_job job_scratch[RW_MAX_JOBS];
	int warned_worker_actions;

	struct rw_agent_keys keys;

	/* preStop drains (/drain): when each held answer is due (0: free slot) */
	uint64_t drain_due_ms[RW_DRAIN_HELD_MAX];

	int trim_pending; /* trim memory once every probe has answered */
	int kick_pending;
	unsigned long log_lines_state;
};

/* Wall-clock ms of loop time t. */
uint64_t rw_agent_wall_ms(const struct rw_agent *a, uint64_t loop_ms);

/* Something reportable changed: send a report from the next loop turn. */
void rw_agent_kick(struct rw_agent *a);

/*
 * Fill r (no allocation; arrays point into the agent) from the current state.
 * Job log tails waiting to be reported go in while they fit a per-report
 * budget; the jobs note whether theirs went in (rw_actions_report_sent).
 */
void rw_agent_build_report(struct rw_agent *a, struct rw_report *r);
/* The jobs part of it (actions.c). */
void rw_agent_fill_jobs(struct rw_agent *a, struct rw_report *r);
/* Take the log tails out of a built report (it did not encode). */
void rw_agent_drop_tails(struct rw_agent *a, struct rw_report *r);

/* probe.c */
int rw_probes_init(struct rw_agent *a);
void rw_probes_tick(struct rw_agent *a);
void rw_probes_stop(struct rw_agent *a);
/* A serve config arrived: a head not reading its Serve applications starts. */
void rw_probes_want_serve(struct rw_agent *a);

/* report.c */
int rw_reporter_init(struct rw_agent *a, char *err, size_t errlen);
void rw_reporter_send(struct rw_agent *a);
void rw_reporter_poll_pipes(struct rw_agent *a);
void rw_reporter_close(struct rw_agent *a);
void rw_reporter_fini(struct rw_agent *a);
const char *rw_refuse_name(enum rw_refuse r);

/* actions.c */
void rw_actions_init(struct rw_agent *a);
void rw_actions_apply(struct rw_agent *a, const struct rw_reply *reply);
/* The report with sequence seq went out / was answered by an accepted reply. */
void rw_actions_report_sent(struct rw_agent *a, uint64_t seq);
void rw_actions_report_acked(struct rw_agent *a, uint64_t seq);
void rw_actions_serve_seen(struct rw_agent *a);
void rw_actions_stop(struct rw_agent *a);
void rw_actions_fini(struct rw_agent *a);

/* memtrim.c */
struct rw_mem_stats {
	long rss_kib, anon_kib, file_kib, hwm_kib, pss_kib; /* -1: unknown */
};

/* This process's RSS (with its anonymous/file split), peak RSS and PSS. */
int rw_mem_read(struct rw_mem_stats *m);

/*
 * malloc_trim, then madvise(MADV_PAGEOUT) over every private read-only
 * file mapping (reclaim, as under memory pressure; never MADV_DONTNEED).
 * *advised_kib (may be NULL) gets the size advised. 0 or a negative errno.
 */
int rw_mem_trim(unsigned long *advised_kib);

/* Return the heap's free pages to the kernel (malloc_trim), after a large transient allocation. */
void rw_mem_release_heap(void);

/* Upper bounds (seconds) of the probe latency histogram buckets. */
const double *rw_probe_lat_bounds(void);
/* TCP connections the health probes' own client has opened (not in rw_http_connects). */
unsigned long rw_probes_connects(const struct rw_agent *a);

/* keys.c */
int rw_keys_init(struct rw_agent *a, char *err, size_t errlen);
/* Re-read the key file if it changed (at most once a second). */
void rw_keys_tick(struct rw_agent *a);
/* Does an Authorization header value prove knowledge of an accepted drain token? */
int rw_keys_drain_ok(const struct rw_agent *a, const char *authorization);
void rw_keys_fini(struct rw_agent *a);
const char *rw_drain_refusal_name(enum rw_drain_refusal r);

/* endpoints.c */
int rw_endpoints_init(struct rw_agent *a, char *err, size_t errlen);
void rw_metrics_render(struct rw_agent *a, struct rw_buf *out);

/* agent.c */
int rw_agent_init(struct rw_agent *a, uv_loop_t *loop, const struct rw_agent_config *cfg, char *err,
		  size_t errlen);
void rw_agent_stop(struct rw_agent *a);
void rw_agent_fini(struct rw_agent *a);

#endif
