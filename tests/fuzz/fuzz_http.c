/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the request-head parser of `shmctl-tool metrics
 * --listen` (tools/shmctl/http.c), the one part of the tool that reads
 * bytes from the network.  The server looks again each time bytes arrive,
 * so the parser is called on every prefix of the input, each in a buffer
 * of exactly its length (AddressSanitizer catches a read past it), until
 * it answers.  Beside memory safety it checks what the server relies on:
 * the status is one it can send; 200 only for GET or HEAD /metrics; once
 * a prefix is refused, so is every longer one (the server stops reading
 * at the first answer, but a parser that changed its mind would mean a
 * request judged by where the bytes happened to be split).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/shmctl/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool known(int code)
{
	return code == 0 || code == 200 || code == 400 || code == 404 || code == 405 ||
	       code == 431;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > HTTP_HEAD_MAX)
		size = HTTP_HEAD_MAX;
	int refused = 0;
	for (size_t n = 0; n <= size; n++) {
		char *head = malloc(n ? n : 1);
		if (!head)
			return 0;
		memcpy(head, data, n);
		bool head_only = false;
		int code = http_examine(head, n, &head_only);
		free(head);
		if (!known(code))
			abort();
		if (code == 200 && !(memcmp(data, "GET /metrics", 12) == 0 ||
				     (head_only && memcmp(data, "HEAD /metrics", 13) == 0)))
			abort();
		if (refused && code != refused)
			abort();
		if (code >= 400 && code != 431)
			refused = code;
		if (code == 200 || code == 404 || code == 405)
			break;      /* answered: the server reads no more */
	}
	return 0;
}
