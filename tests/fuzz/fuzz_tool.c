/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: shmctl-tool's readers (info, check, dump, list,
 * gc --dry-run, each as text and as JSON) on a ring file of fuzzed bytes
 * (tests/fuzz/image.h).  The tool's objects are linked without its main.o;
 * this file calls the commands as main() would after parsing.  Exit codes
 * 0/1/2 are all fine; a crash, an out-of-bounds access or undefined
 * behaviour is not.  The tool's output goes to /dev/null.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "shmring.h"
#include "common.h"
#include "tools/shmctl/shmctl.h"

static void fz_setup(void)
{
	/* the tool prints through stdio; libFuzzer and the sanitizers report
	 * on descriptor 2 and keep their own stream */
	FILE *null = fopen("/dev/null", "w");
	if (null) {
		stdout = null;
		stderr = null;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ctrl = size > IMG_CTRL ? data[IMG_CTRL] : 0;
	struct fz_file f;
	if (fz_make(&f, data, size, ctrl & IMG_SHM) < 0)
		return 0;
	char match[80];
	snprintf(match, sizeof(match), "%s", f.name);
	for (int json = 0; json < 2; json++) {
		struct opts o;
		memset(&o, 0, sizeof(o));
		o.json = json;
		o.uri = f.uri;
		(void)cmd_info(&o);
		(void)cmd_check(&o);
		o.have_count = true;
		o.count = 8;
		o.bytes = json ? UINT64_MAX : 64;
		o.hex = !json && (ctrl & 0x20);
		o.text = !json && !o.hex && (ctrl & 0x40);
		(void)cmd_dump(&o);
		memset(&o, 0, sizeof(o));
		o.json = json;
		o.dirs[0] = fz_dir;
		o.ndirs = 1;
		o.match = match;
		(void)cmd_list(&o);
		o.dry_run = true;
		o.verbose = true;
		o.min_age_ns = 0;
		(void)cmd_gc(&o);
	}
	fflush(stdout);
	unlink(f.path);
	return 0;
}
