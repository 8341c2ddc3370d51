#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include "clinux_writeback.h"

int wisp_start_writeback(int fd, off_t offset, off_t length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) == 0 ? 0 : errno;
}
