/*
 * sd_notify by hand (see notify.h): one sendto() of the state text to the
 * socket systemd put in NOTIFY_SOCKET. A name starting with '@' is Linux's
 * abstract namespace: the '@' becomes a NUL byte and the address length
 * covers exactly the name, with no terminating NUL.
 */
#include "tenantflow/notify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tenantflow/log.h"

bool tf_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return true;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof addr.sun_path) {
        tf_log(TF_LOG_WARN, "NOTIFY_SOCKET is not a usable AF_UNIX address");
        return false;
    }
    memcpy(addr.sun_path, path, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    else
        len++; /* include the terminating NUL of a path name */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                                (const struct sockaddr *)&addr, len) == (ssize_t)strlen(state);
    if (fd >= 0)
        close(fd);
    if (!ok)
        tf_log(TF_LOG_WARN, "could not notify the service manager (%s)", state);
    return ok;
}
