//go:build cgo && !purego && !nodnnl

// The bridge compiled against oneDNN 3.x headers: table sxd_api3.
// scripts/setup.sh installs the headers of PyPI's onednn-devel-cpu-gomp
// under include/ (found first, through this package's -I) and then writes
// onednn3.h here, whose arrival changes this package's files and so makes
// Go rebuild it. Without them <oneapi/dnnl/dnnl.h> is Debian's 2.x, the
// table says major 2, and ops reports that this build has no oneDNN 3.
// dnnl_bridge_impl.h and dnnl_bridge.h here are links to ops' own, so that
// Go sees a change to them as a change to this package.

#if __has_include("onednn3.h")
#include "onednn3.h"
#endif

#define SXD_API_NAME sxd_api3
#include "dnnl_bridge_impl.h"
