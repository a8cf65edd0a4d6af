/*
 * curl_linked.c - rw_curl_api() for programs linked with libcurl: the
 * table holds libcurl's own functions (see curl_api.h).
 */
#include <stdio.h>

#include "curl_api.h"

static const struct rw_curl_api linked = {
    .global_init = curl_global_init,
    .multi_init = curl_multi_init,
    .multi_setopt = curl_multi_setopt,
    .multi_cleanup = curl_multi_cleanup,
    .multi_add_handle = curl_multi_add_handle,
    .multi_remove_handle = curl_multi_remove_handle,
    .multi_socket_action = curl_multi_socket_action,
    .multi_assign = curl_multi_assign,
    .multi_info_read = curl_multi_info_read,
    .multi_strerror = curl_multi_strerror,
    .easy_init = curl_easy_init,
    .easy_cleanup = curl_easy_cleanup,
    .easy_reset = curl_easy_reset,
    .easy_setopt = curl_easy_setopt,
    .easy_getinfo = curl_easy_getinfo,
    .easy_strerror = curl_easy_strerror,
    .slist_append = curl_slist_append,
    .slist_free_all = curl_slist_free_all,
    .getdate = curl_getdate,
};

const struct rw_curl_api *
rw_curl_api(char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	return &linked;
}
