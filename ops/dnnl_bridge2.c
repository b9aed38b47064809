//go:build cgo && !purego && !nodnnl

// The bridge compiled against the oneDNN 2.x headers of Debian's
// libdnnl-dev (found on the default include path): table sxd_api2.

#define SXD_API_NAME sxd_api2
#include "dnnl_bridge_impl.h"
