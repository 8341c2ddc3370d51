#ifndef WISP_CLINUX_H
#define WISP_CLINUX_H
#include <sys/types.h>
#include <spawn.h>
#include "clinux_writeback.h"
#include "clinux_http.h"

/// fallocate(2) with FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE: 0 on success, else errno.
int wisp_punch_hole(int fd, off_t offset, off_t length);
/// fallocate(2) mode 0 (allocate). 0 on success, else errno.
int wisp_allocate(int fd, off_t offset, off_t length);
/// POSIX_SPAWN_SETSID, which <spawn.h> defines only under _GNU_SOURCE.
short wisp_posix_spawn_setsid(void);
/// A new session, an empty signal mask and default dispositions for the termination signals:
/// what a long-lived child (QEMU, virtiofsd) needs when it is spawned from a thread that blocks
/// signals (libdispatch's workers) by a process that ignores SIGINT/SIGTERM/SIGHUP while it
/// handles them itself (both would otherwise be inherited across exec).
int wisp_posix_spawn_daemon_attributes(posix_spawnattr_t *attributes);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34), declared by <spawn.h> only under
/// _GNU_SOURCE: the child closes every descriptor from `from` up before it runs.
int wisp_posix_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);
/// send(2) of `length` bytes with one descriptor attached (SCM_RIGHTS), as QMP's `getfd`
/// expects. Returns the bytes sent, or -1 with errno set.
ssize_t wisp_send_with_fd(int socket, const void *bytes, size_t length, int fd);
#endif
