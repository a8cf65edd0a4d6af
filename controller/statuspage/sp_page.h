/*
 * sp_page.h - controller/statuspage/page.html, embedded at build time
 * (embed.cmake writes sp_page.c into the build tree).
 */
#ifndef RW_SP_PAGE_H
#define RW_SP_PAGE_H

#include <stddef.h>

extern const char rw_sp_page[];
extern const size_t rw_sp_page_len;

#endif
