#ifndef WISP_CLINUX_WRITEBACK_H
#define WISP_CLINUX_WRITEBACK_H
#include <sys/types.h>

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writeback of a range without
/// waiting, so a long sequential writer's final fsync finds little left to do.
/// 0 on success, else errno.
int wisp_start_writeback(int fd, off_t offset, off_t length);
#endif
