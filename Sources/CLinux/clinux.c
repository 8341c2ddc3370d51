#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include "clinux.h"

int wisp_punch_hole(int fd, off_t offset, off_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0 ? 0 : errno;
}

int wisp_allocate(int fd, off_t offset, off_t length) {
    return fallocate(fd, 0, offset, length) == 0 ? 0 : errno;
}

short wisp_posix_spawn_setsid(void) {
    return POSIX_SPAWN_SETSID;
}
