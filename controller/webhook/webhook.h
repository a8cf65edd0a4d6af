/*
 * webhook.h - the admission webhooks served by raywarden-controller
 * (--webhook-addr): an HTTPS listener on the controller's loop (wh_tls.h),
 * the certificates kept in a Secret of the controller's namespace and
 * renewed before expiry (wh_certs.h), the caBundle of the webhook
 * configurations kept equal to the CA, and the validating webhook for
 * ray.io objects (wh_admission.h).
 *
 * Every replica serves (the webhook Service routes to all of them) with the
 * same certificate: the first replica that finds no Secret creates it (a
 * concurrent creator gets 409 AlreadyExists and reads the winner's), and a
 * renewal is a patch with a resourceVersion precondition, so replicas never
 * overwrite each other and all converge on the Secret's content.
 */
#ifndef RW_WEBHOOK_H
#define RW_WEBHOOK_H

#include "manager.h"

/* The webhook component, registered like a reconciler; does nothing without --webhook-addr. */
extern const struct rw_mgr_controller rw_webhook_controller;

/* Request paths of the webhooks (the webhook configurations name them). */
#define RW_WH_PATH_VALIDATE "/validate-ray-io-v1"
#define RW_WH_PATH_INJECT "/mutate-pods-agent"

#endif
