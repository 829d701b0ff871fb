/* SPDX-License-Identifier: MIT */
/* The shmring GStreamer plugin: shmringsink and shmringsrc. */
#include "shmringsink.h"
#include "shmringsrc.h"

#ifndef PACKAGE
#define PACKAGE "shmring"
#endif
#define SHMRING_GST_STR2(x) #x
#define SHMRING_GST_STR(x) SHMRING_GST_STR2(x)
#define SHMRING_GST_VERSION SHMRING_GST_STR(SHMRING_VERSION_MAJOR) "." \
	SHMRING_GST_STR(SHMRING_VERSION_MINOR) "." SHMRING_GST_STR(SHMRING_VERSION_PATCH)

static gboolean plugin_init(GstPlugin *plugin)
{
	gboolean ok = FALSE;

	ok |= GST_ELEMENT_REGISTER(shmringsink, plugin);
	ok |= GST_ELEMENT_REGISTER(shmringsrc, plugin);
	return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, shmring,
	"Frames between processes through shmring rings, in place",
	plugin_init, SHMRING_GST_VERSION, "MIT", "shmring", "https://github.com/shmring")
