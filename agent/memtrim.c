/*
 * memtrim.c - hand back memory that only start-up needed.
 *
 * Most of the agent's resident set is file pages of its shared libraries
 * (libc, libuv, nng, mbed TLS; on a head also libcurl's dependency tree,
 * loaded with the first request that needs it), touched once by the
 * dynamic linker's relocations, by library constructors and, once loaded,
 * by libcurl's global init, and mapped in 64 KiB fault-around chunks. The
 * steady state (probing localhost over plain HTTP) never touches most of
 * them again. madvise(MADV_PAGEOUT) on the read-only file-backed mappings
 * asks the kernel to reclaim those pages now, exactly as memory pressure
 * would: nothing is lost, a page needed later is faulted back in from the
 * page cache or the file. The kernel skips pages other processes also map
 * (their mapcount is above one), COW'd pages (anonymous: relocated data)
 * are never in a read-only file mapping's reclaimable set without swap,
 * and MADV_DONTNEED is never used. Not all kernels allow it for files the
 * process does not own (5.x-6.x: owner or write permission needed); then it
 * simply does nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "agent.h"

static long
status_kib(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Read a small /proc file into buf; returns its length or -1. */
static long
read_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (long)n;
}

int
rw_mem_read(struct rw_mem_stats *m)
{
	char buf[4096];
	memset(m, 0, sizeof(*m));
	if (read_small("/proc/self/status", buf, sizeof(buf)) < 0)
		return -errno;
	m->rss_kib = status_kib(buf, "\nVmRSS:");
	m->anon_kib = status_kib(buf, "\nRssAnon:");
	m->file_kib = status_kib(buf, "\nRssFile:");
	m->hwm_kib = status_kib(buf, "\nVmHWM:");
	m->pss_kib = -1;
	if (read_small("/proc/self/smaps_rollup", buf, sizeof(buf)) >= 0)
		m->pss_kib = status_kib(buf, "\nPss:");
	return 0;
}

int
rw_mem_trim(unsigned long *advised_kib)
{
	char line[512];
	unsigned long total = 0;
	int rv = 0;

	malloc_trim(0);
	if (advised_kib)
		*advised_kib = 0;
#ifdef MADV_PAGEOUT
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	/* "start-end perms offset dev inode path" */
	while (fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi;
		char perms[8];
		int path_at = 0;
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %*s %*s %n", &lo, &hi, perms,
			   &path_at) < 3 ||
		    !path_at)
			continue;
		/* Private, not writable, backed by a file ("/..."): text and
		 * read-only data of the executable and the shared libraries. */
		if (line[path_at] != '/' || perms[1] == 'w' || perms[3] != 'p' || hi <= lo)
			continue;
		if (madvise((void *)lo, hi - lo, MADV_PAGEOUT) == 0)
			total += (unsigned long)(hi - lo) / 1024;
		else if (!rv)
			rv = -errno;
	}
	fclose(f);
#else
	rv = -ENOSYS;
#endif
	if (advised_kib)
		*advised_kib = total;
	return rv;
}

void
rw_mem_release_heap(void)
{
	malloc_trim(0);
}
