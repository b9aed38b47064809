//go:build cgo && !purego && !nodnnl

// Package dnnl3 carries ops' oneDNN bridge compiled against oneDNN 3.x
// headers (see bridge.c), for the bfloat16 convolutions that run faster
// on oneDNN 3 than on Debian's 2.6. It has its own package so that its C
// code has an include path of its own.
package dnnl3

// #cgo CFLAGS: -I${SRCDIR}/include
// #cgo LDFLAGS: -ldl
// #include "dnnl_bridge.h"
import "C"

import "unsafe"

// API returns the bridge's function table, a *C.sxd_api for package ops.
func API() unsafe.Pointer { return unsafe.Pointer(&C.sxd_api3) }
