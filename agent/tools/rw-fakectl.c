/*
 * rw-fakectl - a test peer standing in for the controller's agent hub.
 *
 * Listens with an nng REP socket, opens every envelope with the key from
 * --key-file, prints each accepted report as one JSON line on stdout, and
 * answers with the reply payload read from --reply-file (re-read for every
 * request, so a test can change it while running). Refused messages are
 * counted by reason and printed as JSON lines too. With a wrong key it
 * still answers, sealed with its own key, so the agent's side of the
 * refusal can be tested. --forge makes the replies deliberately bad.
 *
 *   rw-fakectl --listen tcp://127.0.0.1:18478 --key-file k [--reply-file r.json]
 *              [--forge none|seq|session|garbage|version|type]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "rw/buf.h"
#include "rw/bytes.h"
#include "rw/clock.h"
#include "rw/wire.h"

static volatile sig_atomic_t stop;

static void
on_signal(int s)
{
	(void)s;
	stop = 1;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(RW_WIRE_MAX_MSG);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, RW_WIRE_MAX_MSG - 1, f);
	buf[*len] = 0;
	fclose(f);
	return buf;
}

static const char *
reason_of(int rv)
{
	switch (rv) {
	case -EMSGSIZE:
		return "size";
	case -EPROTONOSUPPORT:
		return "version";
	case -EKEYREJECTED:
		return "key";
	case -EACCES:
		return "mac";
	default:
		return "malformed";
	}
}

int
main(int argc, char **argv)
{
	const char *listen = NULL, *key_file = NULL, *reply_file = NULL, *forge = "none";
	struct rw_wire_key key;
	struct rw_wire_replay replay = {0};
	nng_socket sock;
	struct rw_buf out;
	char err[256];
	unsigned long refused_total = 0, reports = 0, resends = 0;
	int rv;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--listen") == 0)
			listen = argv[i + 1];
		else if (strcmp(argv[i], "--key-file") == 0)
			key_file = argv[i + 1];
		else if (strcmp(argv[i], "--reply-file") == 0)
			reply_file = argv[i + 1];
		else if (strcmp(argv[i], "--forge") == 0)
			forge = argv[i + 1];
		else {
			fprintf(stderr, "rw-fakectl: unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (!listen || !key_file) {
		fprintf(stderr, "usage: rw-fakectl --listen URL --key-file PATH [--reply-file "
				"PATH] [--forge none|seq|session|garbage|version|type]\n");
		return 2;
	}
	if ((rv = rw_wire_key_load(&key, key_file, err, sizeof(err))) != 0) {
		fprintf(stderr, "rw-fakectl: %s\n", err);
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if ((rv = nng_rep0_open(&sock)) != 0 ||
	    (rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, RW_WIRE_MAX_MSG)) != 0 ||
	    (rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 100)) != 0 ||
	    (rv = nng_listen(sock, listen, NULL, 0)) != 0) {
		fprintf(stderr, "rw-fakectl: %s: %s\n", listen, nng_strerror(rv));
		return 1;
	}
	printf("{\"event\":\"listening\",\"url\":\"%s\",\"key_id\":\"%08x\"}\n", listen, key.id);
	fflush(stdout);
	rw_buf_init(&out, RW_WIRE_MAX_MSG);

	while (!stop) {
		nng_msg *m = NULL;
		rv = nng_recvmsg(sock, &m, 0);
		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0) {
			if (rv == NNG_ECLOSED)
				break;
			continue;
		}
		const unsigned char *data = nng_msg_body(m);
		size_t n = nng_msg_len(m);
		struct rw_wire_hdr h;
		const char *payload;
		uint64_t session = 0, seq = 0;
		rv = rw_wire_open(&key, data, n, &h, &payload);
		if (n >= RW_WIRE_HDR_LEN) {
			session = rw_get_be64(data + 16);
			seq = rw_get_be64(data + 24);
		}
		if (rv == 0 && h.type != RW_WIRE_REPORT)
			rv = -EBADMSG;
		struct rw_report rpt;
		err[0] = 0;
		if (rv == 0) {
			rv = rw_report_decode(payload, h.len, &rpt, err, sizeof(err));
			if (rv == 0)
				rw_report_fini(&rpt);
			else
				rv = -EINVAL;
		}
		if (rv != 0) {
			for (char *q = err; *q; q++)
				if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20)
					*q = '\'';
			refused_total++;
			printf("{\"event\":\"refused\",\"reason\":\"%s\",\"refused_total\":%lu,"
			       "\"detail\":\"%s\"}\n",
			       rv == -EINVAL ? "payload" : reason_of(rv), refused_total,
			       rv == -EINVAL ? err : "");
			fflush(stdout);
			/* Answer anyway, sealed with our key: the agent must refuse it. */
		} else {
			int fr = rw_wire_replay_check(&replay, &h, rw_clock_wall_ms(), 300000);
			if (fr == RW_WIRE_RESEND)
				resends++;
			else
				reports++;
			/* t_ms: when it arrived (wall clock), for latency figures. */
			printf("{\"event\":\"report\",\"session\":\"%016llx\",\"seq\":%llu,"
			       "\"fresh\":%s,\"reports\":%lu,\"resends\":%lu,\"t_ms\":%llu,"
			       "\"report\":%.*s}\n",
			       (unsigned long long)h.session, (unsigned long long)h.seq,
			       fr == RW_WIRE_FRESH ? "true" : "false", reports, resends,
			       (unsigned long long)rw_clock_wall_ms(), (int)h.len, payload);
			fflush(stdout);
		}
		nng_msg_free(m);

		/* Build the reply. */
		size_t rlen = 0;
		char *rtext = reply_file ? read_file(reply_file, &rlen) : NULL;
		const char *body = rtext && rlen ? rtext : "{}";
		if (!rtext || !rlen)
			rlen = 2;
		struct rw_wire_hdr rh;
		memset(&rh, 0, sizeof(rh));
		rh.type = RW_WIRE_REPLY;
		rh.session = session;
		rh.seq = seq;
		rh.ts_ms = rw_clock_wall_ms();
		if (strcmp(forge, "seq") == 0)
			rh.seq = seq + 1000;
		else if (strcmp(forge, "session") == 0)
			rh.session = session ^ 0x5a5a5a5aULL;
		else if (strcmp(forge, "type") == 0)
			rh.type = RW_WIRE_REPORT;
		rv = rw_wire_seal(&key, &rh, body, rlen, &out);
		free(rtext);
		if (rv != 0)
			continue;
		if (strcmp(forge, "garbage") == 0) {
			rw_buf_reset(&out);
			rw_buf_puts(&out, "\x01garbage, not an envelope\xff");
		} else if (strcmp(forge, "version") == 0 && out.len > 6) {
			out.data[5] = 9;
		}
		nng_send(sock, out.data, out.len, 0);
	}
	printf("{\"event\":\"stopped\",\"reports\":%lu,\"resends\":%lu,\"refused_total\":%lu}\n",
	       reports, resends, refused_total);
	fflush(stdout);
	rw_buf_fini(&out);
	rw_wire_key_wipe(&key);
	nng_close(sock);
	return 0;
}
