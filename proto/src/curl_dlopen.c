/*
 * curl_dlopen.c - rw_curl_api() for programs that load libcurl only when a
 * request first needs it (see curl_api.h).
 *
 * libcurl's dependency tree (OpenSSL, GnuTLS, Kerberos, LDAP, nghttp2...:
 * some 35 libraries) costs several MiB of resident memory as soon as it is
 * mapped, through relocations and library constructors, even if no request
 * is ever made. Loading it with dlopen() on first use keeps that cost off
 * programs that never make one. RAYWARDEN_LIBCURL names another file to
 * load instead of libcurl.so.4 (a library elsewhere, or a build with fewer
 * dependencies).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_api.h"
#include "rw/log.h"

#define DEFAULT_LIBRARY "libcurl.so.4"

static const struct {
	const char *name;
	size_t off;
} syms[] = {
#define SYM(field, fn)                                                                             \
	{                                                                                          \
#fn, offsetof(struct rw_curl_api, field)                                           \
	}
    SYM(global_init, curl_global_init),
    SYM(multi_init, curl_multi_init),
    SYM(multi_setopt, curl_multi_setopt),
    SYM(multi_cleanup, curl_multi_cleanup),
    SYM(multi_add_handle, curl_multi_add_handle),
    SYM(multi_remove_handle, curl_multi_remove_handle),
    SYM(multi_socket_action, curl_multi_socket_action),
    SYM(multi_assign, curl_multi_assign),
    SYM(multi_info_read, curl_multi_info_read),
    SYM(multi_strerror, curl_multi_strerror),
    SYM(easy_init, curl_easy_init),
    SYM(easy_cleanup, curl_easy_cleanup),
    SYM(easy_reset, curl_easy_reset),
    SYM(easy_setopt, curl_easy_setopt),
    SYM(easy_getinfo, curl_easy_getinfo),
    SYM(easy_strerror, curl_easy_strerror),
    SYM(slist_append, curl_slist_append),
    SYM(slist_free_all, curl_slist_free_all),
    SYM(getdate, curl_getdate),
#undef SYM
};

static struct rw_curl_api api;
static int tried;
static int loaded;
static char why[256];

static void
load(void)
{
	const char *name = getenv("RAYWARDEN_LIBCURL");
	if (!name || !name[0])
		name = DEFAULT_LIBRARY;
	/* RTLD_NOW: a library that cannot be bound fails here, with a message,
	 * rather than killing the process at its first call. */
	void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		const char *e = dlerror();
		snprintf(why, sizeof(why), "cannot load %s: %s", name, e ? e : "unknown error");
		return;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *fn = dlsym(lib, syms[i].name);
		if (!fn) {
			snprintf(why, sizeof(why), "cannot load %s: %s missing", name,
				 syms[i].name);
			dlclose(lib);
			memset(&api, 0, sizeof(api));
			return;
		}
		/* POSIX: a function's address fits a void * and back. */
		memcpy((char *)&api + syms[i].off, &fn, sizeof(fn));
	}
	/* The library stays loaded for the life of the process. */
	loaded = 1;
}

const struct rw_curl_api *
rw_curl_api(char *err, size_t errlen)
{
	if (!tried) {
		tried = 1;
		load();
		if (loaded)
			rw_info("http", "libcurl loaded for the first request that needs it");
		else
			rw_error("http", "%s: every request that needs libcurl fails", why);
	}
	if (err && errlen)
		snprintf(err, errlen, "%s", loaded ? "" : why);
	return loaded ? &api : NULL;
}
