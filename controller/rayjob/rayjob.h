/*
 * rayjob.h - the RayJob reconciler (rayjob.c): the controller main.c
 * registers. The lifecycle is rj_decide.h, the pure builders rj_model.h.
 */
#ifndef RW_RAYJOB_H
#define RW_RAYJOB_H

#include "manager.h"

extern const struct rw_mgr_controller rw_rayjob_controller;

#endif
