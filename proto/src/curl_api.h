/*
 * curl_api.h - the libcurl functions the HTTP client (http.c) calls, as a
 * table of function pointers.
 *
 * Two providers define rw_curl_api(), and a program links exactly one:
 * curl_linked.c (library rw_curl_linked) fills the table with libcurl's own
 * symbols, so the program links libcurl as usual; curl_dlopen.c (library
 * rw_curl_dlopen) loads libcurl.so.4 with dlopen() the first time a request
 * needs it, so a program that never sends one never maps libcurl and its
 * dependency tree (TLS libraries, Kerberos, LDAP...).
 */
#ifndef RW_CURL_API_H
#define RW_CURL_API_H

#include <stddef.h>
#include <time.h>

#include <curl/curl.h>

struct rw_curl_api {
	CURLcode (*global_init)(long flags);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
	CURLMcode (*multi_cleanup)(CURLM *m);
	CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
	CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t fd, int ev, int *running);
	CURLMcode (*multi_assign)(CURLM *m, curl_socket_t fd, void *p);
	CURLMsg *(*multi_info_read)(CURLM *m, int *left);
	const char *(*multi_strerror)(CURLMcode c);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *e);
	void (*easy_reset)(CURL *e);
	CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode c);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
	time_t (*getdate)(const char *s, const time_t *now);
};

/*
 * The table, or NULL when libcurl cannot be used; then err receives why
 * (for the dlopen provider: dlerror()'s text, e.g. the library is not
 * installed, or a function it lacks). The answer, success or failure, is
 * decided once and kept: later calls return the same. Loop thread only.
 */
const struct rw_curl_api *rw_curl_api(char *err, size_t errlen);

#endif
