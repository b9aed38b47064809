// dnnl_bridge.h: the small C API that ops/dnnl.go calls, as a table of
// functions (sxd_api). dnnl_bridge_impl.h implements it over oneDNN's C API;
// it is compiled twice, into one table per major version: sxd_api2 by
// ops/dnnl_bridge2.c against Debian's libdnnl-dev 2.6 headers, sxd_api3
// by ops/internal/dnnl3 against the 3.x headers that scripts/setup.sh
// installs from PyPI. Each table opens its own library at run time
// (libdnnl.so.2, libdnnl.so.3) and keeps its own engine and work buffers,
// so both can live in one process; an object made through one table is
// used through that table only.
//
// oneDNN's OpenMP team belongs to the calling thread, and a convolution or
// batch norm object holds per-call state: ops/dnnl.go routes every call
// through one goroutine locked to its thread (the default context), or,
// for an ops.Stream, on the caller's thread with the stream's context
// bound (bind), one call at a time per stream.

#ifndef SELFSUP_DNNL_BRIDGE_H
#define SELFSUP_DNNL_BRIDGE_H

#include <stdint.h>

// Passes of a convolution, the "pass" argument of conv_exec.
enum {
	SXD_FWD = 0,        // in0 x [N,C,H,W], in1 w [O,C,K,K], out y [N,O,OH,OW]
	SXD_BWD_DATA = 1,   // in0 dy [N,O,OH,OW], in1 w [O,C,K,K], out dx [N,C,H,W]
	SXD_BWD_WEIGHTS = 2 // in0 x [N,C,H,W], in1 dy [N,O,OH,OW], out dw [O,C,K,K]
};

// Layouts of the caller's activations (ops.Layout's numbering).
enum { SXD_NCHW = 0, SXD_NCHW16C = 1, SXD_NHWC = 2 };

// SXD_LOAD_ERROR is returned while libdnnl is not loaded; status_str
// then says why.
#define SXD_LOAD_ERROR (-1000)

typedef struct sxd_conv sxd_conv;
typedef struct sxd_bn sxd_bn;
typedef struct sxd_ctx sxd_ctx;

typedef struct sxd_api {
	// major is the oneDNN major version the table was compiled against
	// (2 or 3); soname the library load opens by default.
	int major;
	const char *soname;

	// load opens the library (path, or soname where path is NULL or
	// empty) and resolves the functions used; idempotent. Returns 0 or
	// SXD_LOAD_ERROR. The library stays loaded for the life of the
	// process. version then returns "major.minor.patch".
	int (*load)(const char *path);
	const char *(*version)(void);

	// init creates the CPU engine and the default context; idempotent.
	// Returns a dnnl_status_t (0 is success) or SXD_LOAD_ERROR.
	int (*init)(void);

	// shutdown frees the default context's work buffers, its stream and
	// the engine. Every object must have been destroyed before. Safe to
	// call twice.
	void (*shutdown)(void);

	// ctx_create makes a context of its own (a oneDNN stream and work
	// buffers) whose calls run with an OpenMP team of threads threads (0:
	// the thread's own setting). Needs init.
	int (*ctx_create)(int threads, sxd_ctx **out);

	// ctx_destroy frees a context; the objects used with it must have
	// been destroyed before. NULL is allowed.
	void (*ctx_destroy)(sxd_ctx *c);

	// bind makes every later call on the calling thread use c (and its
	// team size), until bind(NULL) puts the default context and the
	// thread's previous team size back. A context is bound to one thread
	// at a time.
	void (*bind)(sxd_ctx *c);

	// conv_create builds the forward primitive descriptor of a
	// convolution (no bias, dilation 1, one group, square kernel k, stride
	// s, symmetric padding p) with layouts left to oneDNN. The caller's
	// x and y (and dx, dy) are in layouts xl and yl (SXD_NCHW, ...) and
	// float32; weights are OIHW float32. With bf16 set the primitives read
	// their inputs in bfloat16 (converted from the caller's float32 on
	// each call) and write float32. Primitives for each pass are created
	// on first use.
	int (*conv_create)(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int64_t s, int64_t p,
			int xl, int yl, int bf16, sxd_conv **out);

	// conv_exec runs one pass on the caller's buffers (layouts as given
	// to conv_create), reordering to and from the primitive's layouts in
	// the context's work buffers where they differ. The pointers are used
	// only during the call. The output is overwritten.
	int (*conv_exec)(sxd_conv *cv, int pass, const float *in0, const float *in1, float *out);

	// conv_impl names the implementation oneDNN chose for a pass (for
	// example "jit:avx512_core") and the layouts of its three arguments;
	// the pass's primitive is created if needed. On failure it returns a
	// message.
	const char *(*conv_impl)(sxd_conv *cv, int pass);

	// conv_destroy frees a convolution; NULL is allowed.
	void (*conv_destroy)(sxd_conv *cv);

	// status_str describes a dnnl_status_t or SXD_LOAD_ERROR.
	const char *(*status_str)(int status);

	// bn_create describes a float32 batch normalisation of data
	// [n, c, h, w] in layout l (SXD_NCHW, ...) with epsilon eps, followed
	// by a ReLU where relu is set.
	int (*bn_create)(int64_t n, int64_t c, int64_t h, int64_t w, float eps, int l, int relu, sxd_bn **out);

	// bn_workspace_size is the size in bytes of the workspace that a
	// training forward pass with a fused ReLU writes and its backward
	// pass reads (0 without the ReLU; negative: -(status)-1 on failure).
	int64_t (*bn_workspace_size)(sxd_bn *bn);

	// bn_forward normalises x into y with scale and shift ([c] each). In
	// training it computes the batch mean and biased variance into mean
	// and var (and, with the ReLU fused, the workspace ws); otherwise it
	// reads them (the running statistics) and ws is unused.
	int (*bn_forward)(sxd_bn *bn, int training, const float *x, const float *scale, const float *shift, float *mean,
			float *var, float *y, void *ws);

	// bn_backward computes dx, dscale and dshift from x, dy, scale (shift
	// is read by oneDNN 2.x's argument check only) and the statistics of
	// the forward pass (batch ones in training, where the gradient flows
	// through them too; given ones otherwise). In training with the ReLU
	// fused, dy is the gradient of the ReLU's output and ws the forward
	// pass's workspace; otherwise dy is the gradient of the normalised
	// output (the caller applies the ReLU's mask) and ws is unused.
	int (*bn_backward)(sxd_bn *bn, int training, const float *x, const float *dy, const float *scale,
			const float *shift, const float *mean, const float *var, float *dx, float *dscale, float *dshift,
			const void *ws);

	// bn_destroy frees a batch normalisation; NULL is allowed.
	void (*bn_destroy)(sxd_bn *bn);
} sxd_api;

extern const sxd_api sxd_api2, sxd_api3;

#endif
