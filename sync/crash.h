/* SPDX-License-Identifier: MIT */
/*
 * Crash points for the test build (make builds build/crash/libshmring.a
 * with -DSHMRING_CRASH_POINTS).  With SHMRING_CRASH_AT=<point>:<n> in the
 * environment, the n-th pass of this process through the named point calls
 * raise(SIGKILL): the crash tests kill a process at exactly the instruction
 * they want, in a loop over every point and n.  With <point>:<n>:stop it
 * raises SIGSTOP instead, at the n-th pass and every later one: a test
 * holds a process there while others move, then sends SIGCONT.  In the
 * library that ships the macro is empty.
 */
#ifndef SHMRING_SYNC_CRASH_H
#define SHMRING_SYNC_CRASH_H

#ifdef SHMRING_CRASH_POINTS
__attribute__((visibility("hidden"))) void crash_point(const char *name);
/* Read SHMRING_CRASH_AT again and restart the count (a forked child that
 * was given its own setting calls it before anything else). */
__attribute__((visibility("hidden"))) void crash_reset(void);
#define CRASH_POINT(name) crash_point(name)
#else
#define CRASH_POINT(name) ((void)0)
#endif

#endif
