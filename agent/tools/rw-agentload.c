/*
 * rw-agentload - a load generator standing in for many raywarden agents.
 *
 * Reads a list of pods (one per line: namespace cluster pod uid node_type
 * group cluster_uid), derives each cluster's key from the controller's
 * master key the way the controller does (controller/agentkey.h: the 64 hex
 * digits of HMAC-SHA256(master, "raywarden/v2/<ns>/<cluster>/<cluster uid>")),
 * and sends one sealed
 * report per pod per period through a few nng REQ sockets with many
 * contexts each. Every pod has its own session and sequence; the sends are
 * spread evenly over the period. Each second (after --warmup seconds) a
 * fraction of the pods is picked to flip ready <-> not ready; a picked pod
 * flips at its next send, and that send is printed with its wall-clock
 * time so a watcher can measure report -> readiness-gate latency.
 *
 *   rw-agentload --dial tcp://IP:8478 --master-key-file F --pods-file P
 *                [--duration 60] [--period-ms 1000] [--flip-permille 10]
 *                [--warmup 10] [--ramp 0] [--sockets 4] [--ctxs 64] [--timeout-ms 5000]
 *
 * --ramp S: pods join gradually, pod i of N sending its first report i*S/N
 * seconds in (agents start with their pods; a first report usually flips
 * the pod's gate, so joining all at once is a burst of N gate patches).
 *
 * Output, JSON lines on stdout:
 *   {"event":"start",...}
 *   {"event":"flip","ns":..,"pod":..,"ready":0|1,"t_us":..}   per flipped send
 *   {"event":"second","t":..,"sent":..,"replies":..,"errors":..,"late":..,"inflight":..}
 *   {"event":"done",...}
 * "late" counts sends that left more than 100 ms after their slot because
 * no context was free (the controller or the contexts could not keep up).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/md.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "rw/buf.h"
#include "rw/clock.h"
#include "rw/wire.h"

struct pod {
	char ns[64], cluster[64], name[254], uid[64], type[8], group[64], cluster_uid[64];
	int key;
	uint64_t session, seq;
	int ready;
	int flip_pending;
};

struct cl_key {
	char ns[64], cluster[64];
	struct rw_wire_key key;
};

struct slot {
	nng_ctx ctx;
	nng_aio *aio;
	int sending;
	int next_free;
};

static volatile sig_atomic_t stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;
static int free_head = -1;
static unsigned long n_replies, n_errors, n_inflight;
static int timeout_ms = 5000;

static void
on_signal(int s)
{
	(void)s;
	stop = 1;
}

static uint64_t
mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
slot_release(int i, int ok)
{
	pthread_mutex_lock(&mu);
	if (ok)
		n_replies++;
	else
		n_errors++;
	n_inflight--;
	slots[i].next_free = free_head;
	free_head = i;
	pthread_mutex_unlock(&mu);
}

static void
slot_cb(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct slot *s = &slots[i];
	int rv = nng_aio_result(s->aio);

	if (s->sending) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			slot_release(i, 0);
			return;
		}
		s->sending = 0;
		nng_aio_set_timeout(s->aio, timeout_ms);
		nng_ctx_recv(s->ctx, s->aio);
		return;
	}
	if (rv == 0)
		nng_msg_free(nng_aio_get_msg(s->aio));
	slot_release(i, rv == 0);
}

static int
derive(const struct rw_wire_key *master, const char *ns, const char *cluster,
       const char *cluster_uid, struct rw_wire_key *out)
{
	static const char hex[] = "0123456789abcdef";
	char msg[256], digits[65];
	unsigned char mac[32];
	int n = snprintf(msg, sizeof(msg), "raywarden/v2/%s/%s/%s", ns, cluster, cluster_uid);
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

	if (n < 0 || (size_t)n >= sizeof(msg) || !md)
		return -EINVAL;
	if (mbedtls_md_hmac(md, master->k, master->len, (const unsigned char *)msg, (size_t)n,
			    mac) != 0)
		return -EIO;
	for (size_t i = 0; i < sizeof(mac); i++) {
		digits[2 * i] = hex[mac[i] >> 4];
		digits[2 * i + 1] = hex[mac[i] & 15];
	}
	digits[64] = 0;
	return rw_wire_key_set(out, digits, 64);
}

static int
load_pods(const char *path, const struct rw_wire_key *master, struct pod **pods_out, int *npods,
	  struct cl_key **keys_out, int *nkeys)
{
	FILE *f = fopen(path, "r");
	struct pod *pods = NULL;
	struct cl_key *keys = NULL;
	int np = 0, capp = 0, nk = 0, capk = 0, rv = 0;
	char line[1024];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		struct pod p;
		memset(&p, 0, sizeof(p));
		int nf = sscanf(line, "%63s %63s %253s %63s %7s %63s %63s", p.ns, p.cluster, p.name,
				p.uid, p.type, p.group, p.cluster_uid);
		if (nf == 6) {
			/* Keys are bound to the cluster UID: without it every report is refused. */
			fprintf(stderr,
				"rw-agentload: %s: a line without the cluster UID (7th field)\n",
				path);
			rv = -EINVAL;
			goto out;
		}
		if (nf != 7)
			continue;
		if (np == capp) {
			capp = capp ? capp * 2 : 1024;
			void *q = realloc(pods, (size_t)capp * sizeof(*pods));
			if (!q) {
				rv = -ENOMEM;
				goto out;
			}
			pods = q;
		}
		/* Clusters arrive grouped; look back at the last key first. */
		int k = -1;
		for (int j = nk - 1; j >= 0 && j >= nk - 4; j--)
			if (!strcmp(keys[j].ns, p.ns) && !strcmp(keys[j].cluster, p.cluster))
				k = j;
		if (k < 0) {
			if (nk == capk) {
				capk = capk ? capk * 2 : 256;
				void *q = realloc(keys, (size_t)capk * sizeof(*keys));
				if (!q) {
					rv = -ENOMEM;
					goto out;
				}
				keys = q;
			}
			snprintf(keys[nk].ns, sizeof(keys[nk].ns), "%s", p.ns);
			snprintf(keys[nk].cluster, sizeof(keys[nk].cluster), "%s", p.cluster);
			if ((rv = derive(master, p.ns, p.cluster, p.cluster_uid, &keys[nk].key)) !=
			    0)
				goto out;
			k = nk++;
		}
		p.key = k;
		p.ready = 1;
		pods[np++] = p;
	}
out:
	fclose(f);
	if (rv != 0) {
		free(pods);
		free(keys);
		return rv;
	}
	*pods_out = pods;
	*npods = np;
	*keys_out = keys;
	*nkeys = nk;
	return 0;
}

static int
seal_report(const struct pod *p, const struct rw_wire_key *key, struct rw_buf *payload,
	    struct rw_buf *out)
{
	static struct rw_report r; /* large; only touched by the main thread */
	struct rw_wire_hdr h;
	int rv;

	memset(&r, 0, sizeof(r));
	snprintf(r.ns, sizeof(r.ns), "%s", p->ns);
	snprintf(r.pod, sizeof(r.pod), "%s", p->name);
	snprintf(r.uid, sizeof(r.uid), "%s", p->uid);
	snprintf(r.cluster, sizeof(r.cluster), "%s", p->cluster);
	snprintf(r.group, sizeof(r.group), "%s", p->group);
	snprintf(r.node_type, sizeof(r.node_type), "%s", p->type);
	snprintf(r.pod_ip, sizeof(r.pod_ip), "10.0.0.1");
	snprintf(r.agent_version, sizeof(r.agent_version), "agentload");
	r.ready = p->ready;
	r.live = 1;
	r.raylet.state = p->ready ? RW_PROBE_OK : RW_PROBE_REFUSED;
	if (!p->ready) {
		snprintf(r.ready_reason, sizeof(r.ready_reason), "raylet down: simulated");
		snprintf(r.raylet.reason, sizeof(r.raylet.reason), "connection refused");
	}
	r.gcs.state = strcmp(p->type, "head") == 0 ? RW_PROBE_OK : RW_PROBE_DISABLED;
	r.proxy.state = RW_PROBE_DISABLED;
	rw_buf_reset(payload);
	if ((rv = rw_report_encode(&r, payload)) != 0)
		return rv;
	memset(&h, 0, sizeof(h));
	h.type = RW_WIRE_REPORT;
	h.session = p->session;
	h.seq = p->seq;
	h.ts_ms = rw_clock_wall_ms();
	return rw_wire_seal(key, &h, (const char *)payload->data, payload->len, out);
}

static uint64_t
rnd64(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int
main(int argc, char **argv)
{
	const char *dial = NULL, *master_file = NULL, *pods_file = NULL;
	double duration = 60, warmup = 10, ramp = 0;
	int period_ms = 1000, flip_permille = 10, nsock = 4, nctx = 64;
	struct rw_wire_key master;
	struct pod *pods = NULL;
	struct cl_key *keys = NULL;
	int npods = 0, nkeys = 0, rv, nslots;
	nng_socket *socks = NULL;
	struct rw_buf payload, out;
	char err[256];
	uint64_t rs = (uint64_t)rw_clock_wall_us() ^ ((uint64_t)getpid() << 32);

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (!strcmp(a, "--dial"))
			dial = v;
		else if (!strcmp(a, "--master-key-file"))
			master_file = v;
		else if (!strcmp(a, "--pods-file"))
			pods_file = v;
		else if (!strcmp(a, "--duration"))
			duration = atof(v);
		else if (!strcmp(a, "--warmup"))
			warmup = atof(v);
		else if (!strcmp(a, "--ramp"))
			ramp = atof(v);
		else if (!strcmp(a, "--period-ms"))
			period_ms = atoi(v);
		else if (!strcmp(a, "--flip-permille"))
			flip_permille = atoi(v);
		else if (!strcmp(a, "--sockets"))
			nsock = atoi(v);
		else if (!strcmp(a, "--ctxs"))
			nctx = atoi(v);
		else if (!strcmp(a, "--timeout-ms"))
			timeout_ms = atoi(v);
		else {
			fprintf(stderr, "rw-agentload: unknown argument %s\n", a);
			return 2;
		}
	}
	if (!dial || !master_file || !pods_file || nsock < 1 || nsock > 1024 || nctx < 1 ||
	    nctx > 4096 || period_ms < 10 || duration <= 0) {
		fprintf(
		    stderr,
		    "usage: rw-agentload --dial URL --master-key-file F --pods-file P "
		    "[--duration S] [--warmup S] [--ramp S] [--period-ms MS] [--flip-permille N] "
		    "[--sockets N] [--ctxs N] [--timeout-ms MS]\n");
		return 2;
	}
	/* The master key is loaded as the controller loads it (agentkey.h). */
	if (rw_wire_key_load(&master, master_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "rw-agentload: %s\n", err);
		return 2;
	}
	if ((rv = load_pods(pods_file, &master, &pods, &npods, &keys, &nkeys)) != 0 || npods == 0) {
		fprintf(stderr, "rw-agentload: %s: %s\n", pods_file,
			rv ? strerror(-rv) : "no pods");
		return 2;
	}
	rw_wire_key_wipe(&master);
	for (int i = 0; i < npods; i++) {
		pods[i].session = rnd64(&rs);
		pods[i].seq = 0;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	nslots = nsock * nctx;
	socks = calloc((size_t)nsock, sizeof(*socks));
	slots = calloc((size_t)nslots, sizeof(*slots));
	if (!socks || !slots)
		return 1;
	for (int s = 0; s < nsock; s++) {
		if ((rv = nng_req0_open(&socks[s])) != 0 ||
		    (rv = nng_socket_set_size(socks[s], NNG_OPT_RECVMAXSZ, RW_WIRE_MAX_MSG)) != 0 ||
		    (rv = nng_socket_set_ms(socks[s], NNG_OPT_REQ_RESENDTIME, 60000)) != 0 ||
		    (rv = nng_dial(socks[s], dial, NULL, 0)) != 0) {
			fprintf(stderr, "rw-agentload: %s: %s\n", dial, nng_strerror(rv));
			return 1;
		}
		for (int c = 0; c < nctx; c++) {
			int i = s * nctx + c;
			if ((rv = nng_ctx_open(&slots[i].ctx, socks[s])) != 0 ||
			    (rv = nng_aio_alloc(&slots[i].aio, slot_cb, (void *)(intptr_t)i)) !=
				0) {
				fprintf(stderr, "rw-agentload: ctx: %s\n", nng_strerror(rv));
				return 1;
			}
		}
	}
	/* Interleave sockets in the free list so load spreads over them. */
	for (int c = nctx - 1; c >= 0; c--)
		for (int s = nsock - 1; s >= 0; s--) {
			int i = s * nctx + c;
			slots[i].next_free = free_head;
			free_head = i;
		}
	rw_buf_init(&payload, RW_WIRE_MAX_MSG);
	rw_buf_init(&out, RW_WIRE_MAX_MSG);
	printf("{\"event\":\"start\",\"pods\":%d,\"clusters\":%d,\"sockets\":%d,\"ctxs\":%d,"
	       "\"period_ms\":%d,\"flip_permille\":%d,\"t_us\":%llu}\n",
	       npods, nkeys, nsock, nctx, period_ms, flip_permille,
	       (unsigned long long)rw_clock_wall_us());
	fflush(stdout);

	uint64_t t0 = mono_us(), period_us = (uint64_t)period_ms * 1000;
	uint64_t end = t0 + (uint64_t)(duration * 1e6), warm = t0 + (uint64_t)(warmup * 1e6);
	uint64_t next_tick = t0 + 1000000, due = 0; /* due: sends owed so far (global index) */
	unsigned long sent = 0, late = 0, flips = 0, sec_sent = 0, sec_late = 0, sec_flips = 0;
	unsigned long last_rep = 0, last_err = 0, sec = 0;
	uint64_t cursor = 0, ramp_us = (uint64_t)(ramp * 1e6);
	int nflip = (int)((long)npods * flip_permille / 1000);

	while (!stop) {
		uint64_t now = mono_us();
		if (now >= end)
			break;
		if (now >= next_tick) {
			unsigned long rep, errs, infl;
			pthread_mutex_lock(&mu);
			rep = n_replies;
			errs = n_errors;
			infl = n_inflight;
			pthread_mutex_unlock(&mu);
			sec++;
			printf("{\"event\":\"second\",\"t\":%lu,\"sent\":%lu,\"replies\":%lu,"
			       "\"errors\":%lu,\"late\":%lu,\"flips\":%lu,\"inflight\":%lu}\n",
			       sec, sec_sent, rep - last_rep, errs - last_err, sec_late, sec_flips,
			       infl);
			fflush(stdout);
			last_rep = rep;
			last_err = errs;
			sec_sent = sec_late = sec_flips = 0;
			next_tick += 1000000;
			if (now >= warm)
				for (int k = 0; k < nflip; k++)
					pods[rnd64(&rs) % (uint64_t)npods].flip_pending = 1;
		}
		/* Sends owed by now: npods per period, evenly spread. */
		uint64_t owed = (now - t0) * (uint64_t)npods / period_us;
		while (due < owed && !stop) {
			int si;
			uint64_t idx = cursor % (uint64_t)npods;
			if (ramp_us && now - t0 < idx * ramp_us / (uint64_t)npods) {
				/* This pod has not joined yet. */
				cursor++;
				due++;
				continue;
			}
			pthread_mutex_lock(&mu);
			si = free_head;
			if (si >= 0) {
				free_head = slots[si].next_free;
				n_inflight++;
			}
			pthread_mutex_unlock(&mu);
			if (si < 0)
				break; /* no free context: try again shortly */
			/* Late: sent more than 100 ms after its slot. */
			if (now > t0 + due * period_us / (uint64_t)npods + 100000) {
				late++;
				sec_late++;
			}
			struct pod *p = &pods[idx];
			int flipped = 0;
			if (p->flip_pending) {
				p->flip_pending = 0;
				p->ready = !p->ready;
				flipped = 1;
			}
			p->seq++;
			nng_msg *m = NULL;
			if (seal_report(p, &keys[p->key].key, &payload, &out) != 0 ||
			    nng_msg_alloc(&m, 0) != 0 ||
			    nng_msg_append(m, out.data, out.len) != 0) {
				nng_msg_free(m);
				slot_release(si, 0);
			} else {
				if (flipped) {
					printf("{\"event\":\"flip\",\"ns\":\"%s\",\"pod\":\"%s\","
					       "\"ready\":%d,\"t_us\":%llu}\n",
					       p->ns, p->name, p->ready,
					       (unsigned long long)rw_clock_wall_us());
					flips++;
					sec_flips++;
				}
				struct slot *s = &slots[si];
				s->sending = 1;
				nng_aio_set_msg(s->aio, m);
				nng_aio_set_timeout(s->aio, timeout_ms);
				nng_ctx_send(s->ctx, s->aio);
			}
			cursor++;
			due++;
			sent++;
			sec_sent++;
		}
		/* Sleep until the next send is owed (at most 1 ms). */
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	/* Let in-flight requests finish (bounded). */
	for (int i = 0; i < 500; i++) {
		unsigned long infl;
		pthread_mutex_lock(&mu);
		infl = n_inflight;
		pthread_mutex_unlock(&mu);
		if (infl == 0)
			break;
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&mu);
	printf("{\"event\":\"done\",\"sent\":%lu,\"replies\":%lu,\"errors\":%lu,\"late\":%lu,"
	       "\"flips\":%lu,\"inflight\":%lu,\"seconds\":%.1f}\n",
	       sent, n_replies, n_errors, late, flips, n_inflight, (mono_us() - t0) / 1e6);
	pthread_mutex_unlock(&mu);
	fflush(stdout);
	for (int s = 0; s < nsock; s++)
		nng_close(socks[s]);
	for (int i = 0; i < nslots; i++)
		nng_aio_free(slots[i].aio);
	free(slots);
	free(socks);
	for (int k = 0; k < nkeys; k++)
		rw_wire_key_wipe(&keys[k].key);
	free(keys);
	free(pods);
	rw_buf_fini(&payload);
	rw_buf_fini(&out);
	return 0;
}
