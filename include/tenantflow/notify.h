/*
 * The systemd readiness protocol (sd_notify), without libsystemd: a datagram
 * to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name
 * written with a leading '@').
 */
#ifndef TENANTFLOW_NOTIFY_H
#define TENANTFLOW_NOTIFY_H

#include <stdbool.h>

/* Sends state ("READY=1", "STOPPING=1", "RELOADING=1\nMONOTONIC_USEC=...").
 * Returns true when sent, or when NOTIFY_SOCKET is unset (nothing to tell). */
bool tf_notify(const char *state);

#endif
