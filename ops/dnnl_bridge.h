// dnnl_bridge.h: the small C API that ops/dnnl.go calls; implemented in
// dnnl_bridge.c over oneDNN's C API 2.x (Debian libdnnl-dev 2.6: headers
// at build time, libdnnl.so.2 opened at run time).
//
// oneDNN's OpenMP team belongs to the calling thread, and a convolution or
// batch norm object holds per-call state: ops/dnnl.go routes every call
// through one goroutine locked to its thread (the default context), or,
// for an ops.Stream, on the caller's thread with the stream's context
// bound (sxd_bind), one call at a time per stream.

#ifndef SELFSUP_DNNL_BRIDGE_H
#define SELFSUP_DNNL_BRIDGE_H

#include <stdint.h>

// Passes of a convolution, the "pass" argument of sxd_conv_exec.
enum {
	SXD_FWD = 0,        // in0 x [N,C,H,W], in1 w [O,C,K,K], out y [N,O,OH,OW]
	SXD_BWD_DATA = 1,   // in0 dy [N,O,OH,OW], in1 w [O,C,K,K], out dx [N,C,H,W]
	SXD_BWD_WEIGHTS = 2 // in0 x [N,C,H,W], in1 dy [N,O,OH,OW], out dw [O,C,K,K]
};

typedef struct sxd_conv sxd_conv;

// SXD_LIBDNNL is the shared library sxd_load opens (Debian libdnnl2).
#define SXD_LIBDNNL "libdnnl.so.2"

// SXD_LOAD_ERROR is returned while libdnnl is not loaded; sxd_status_str
// then says why.
#define SXD_LOAD_ERROR (-1000)

// sxd_load opens libdnnl and resolves the functions used here; idempotent.
// Returns 0 or SXD_LOAD_ERROR. The library stays loaded for the life of the
// process.
int sxd_load(void);

// sxd_init creates the CPU engine and stream; idempotent. Returns a
// dnnl_status_t (0 is success) or SXD_LOAD_ERROR.
int sxd_init(void);

// sxd_shutdown frees the shared work buffers, the stream and the engine.
// Every sxd_conv must have been destroyed before. Safe to call twice.
void sxd_shutdown(void);

typedef struct sxd_ctx sxd_ctx;

// sxd_ctx_create makes a context of its own (a oneDNN stream and work
// buffers) whose calls run with an OpenMP team of threads threads (0: the
// thread's own setting). Needs sxd_init. Returns a dnnl_status_t or
// SXD_LOAD_ERROR.
int sxd_ctx_create(int threads, sxd_ctx **out);

// sxd_ctx_destroy frees a context; the objects used with it must have been
// destroyed before. NULL is allowed.
void sxd_ctx_destroy(sxd_ctx *c);

// sxd_bind makes every later call on the calling thread use c (and its
// team size), until sxd_bind(NULL) puts the default context and the
// thread's previous team size back. A context is bound to one thread at a
// time.
void sxd_bind(sxd_ctx *c);

// sxd_conv_create builds the forward primitive descriptor of a float32
// convolution (no bias, dilation 1, one group, square kernel k, stride s,
// symmetric padding p) with layouts left to oneDNN. The caller's x and y
// (and dx, dy) are NCHW, or nChw16c where xblk / yblk is set; weights are
// OIHW. Primitives for each pass are created on first use.
int sxd_conv_create(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o,
		int64_t k, int64_t s, int64_t p, int xblk, int yblk, sxd_conv **out);

// sxd_conv_exec runs one pass on the caller's buffers (layouts as given
// to sxd_conv_create), reordering to and from the primitive's layouts in
// shared work buffers where they differ.
// The pointers are used only during the call. The output is overwritten.
int sxd_conv_exec(sxd_conv *cv, int pass, const float *in0, const float *in1,
		float *out);

// sxd_conv_impl names the implementation oneDNN chose for a pass (for
// example "jit:avx512_core") and the layouts of its three arguments; the
// pass's primitive is created if needed. On failure it returns a message.
const char *sxd_conv_impl(sxd_conv *cv, int pass);

// sxd_conv_destroy frees a convolution; NULL is allowed.
void sxd_conv_destroy(sxd_conv *cv);

// sxd_status_str describes a dnnl_status_t or SXD_LOAD_ERROR.
const char *sxd_status_str(int status);

typedef struct sxd_bn sxd_bn;

// sxd_bn_create describes a float32 batch normalisation of data
// [n, c, h, w] in nChw16c (blk set) or NCHW layout with epsilon eps,
// followed by a ReLU where relu is set.
int sxd_bn_create(int64_t n, int64_t c, int64_t h, int64_t w, float eps, int blk, int relu, sxd_bn **out);

// sxd_bn_workspace_size is the size in bytes of the workspace that a
// training forward pass with a fused ReLU writes and its backward pass
// reads (0 without the ReLU; negative: -(status)-1 on failure).
int64_t sxd_bn_workspace_size(sxd_bn *bn);

// sxd_bn_forward normalises x into y with scale and shift ([c] each). In
// training it computes the batch mean and biased variance into mean and
// var (and, with the ReLU fused, the workspace ws); otherwise it reads
// them (the running statistics) and ws is unused.
int sxd_bn_forward(sxd_bn *bn, int training, const float *x, const float *scale, const float *shift,
		float *mean, float *var, float *y, void *ws);

// sxd_bn_backward computes dx, dscale and dshift from x, dy, scale (shift
// is read by oneDNN's argument check only) and the statistics of the
// forward pass (batch ones in training, where the gradient flows through
// them too; given ones otherwise). In training with the ReLU fused, dy is
// the gradient of the ReLU's output and ws the forward pass's workspace;
// otherwise dy is the gradient of the normalised output (the caller
// applies the ReLU's mask) and ws is unused.
int sxd_bn_backward(sxd_bn *bn, int training, const float *x, const float *dy, const float *scale,
		const float *shift, const float *mean, const float *var, float *dx, float *dscale, float *dshift,
		const void *ws);

void sxd_bn_destroy(sxd_bn *bn);

#endif
