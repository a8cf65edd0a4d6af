/*
 * statuspage.h - the controller's read-only status page: "/" (one HTML
 * document with its CSS and JS inline, embedded at build time) and
 * "/status.json" (its data, sp_json.h) on the metrics listener, unless
 * --status-page=false.
 *
 * The data is what the controller holds anyway: the RayCluster, RayService,
 * RayJob and Ray pod informers' caches, the agent hub's latest reports, plus
 * two small rings kept here: per pod its recent readiness transitions (as
 * the agents report them) and the recent Events the controller emitted. A
 * generation number counts every change to any of them; it is the answer's
 * ETag, so a poll of an unchanged state is a 304 without a body.
 */
#ifndef RW_STATUSPAGE_H
#define RW_STATUSPAGE_H

#include "manager.h"

extern const struct rw_mgr_controller rw_statuspage_controller;

/* Cap of /status.json (a truncation marker with counts says what was left out). */
#define RW_SP_MAX_BYTES (2u * 1024 * 1024)

#endif
