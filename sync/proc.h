/* SPDX-License-Identifier: MIT */
/* Facts about processes from /proc. */
#ifndef SHMRING_SYNC_PROC_H
#define SHMRING_SYNC_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* The start time of process pid (0: this process) in clock ticks since
 * boot, field 22 of /proc/PID/stat: with the pid, it tells a process from
 * a later one given the same pid.  0 if it cannot be read (no such
 * process, no /proc) or pid is negative. */
__attribute__((visibility("hidden"))) uint64_t proc_start_ticks(pid_t pid);

#endif /* SHMRING_SYNC_PROC_H */
