// dnnl_bridge_impl.h: convolutions (forward, backward data, backward
// weights; float32, or bfloat16 inputs with float32 outputs) and batch
// normalisation over oneDNN's C API, 2.x or 3.x as the headers the
// including file sees say (DNNL_VERSION_MAJOR). See dnnl_bridge.h. The
// including file defines SXD_API_NAME, the name of the table it exports
// (sxd_api2, sxd_api3); everything else here is static, so the file can be
// compiled once per major version into one binary.
//
// Each convolution lets oneDNN choose its layouts (format_tag any: blocked
// nChw16c-style activations and OIhw16i16o-style weights on AVX-512) and
// reorders from and to the caller's buffers around each call. The
// reordered copies and the primitives' scratchpads live in four work
// buffers per context (calls on a context are serialised), so memory grows
// with the largest convolution, not their number.

#include "dnnl_bridge.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <oneapi/dnnl/dnnl_version.h>

// oneDNN 3.x (PyPI's onednn-cpu-gomp, headers from onednn-devel-cpu-gomp)
// replaced 2.x's operation descriptors by primitive descriptors created
// directly and made memory descriptors opaque handles; SXD_V3 selects
// that API. sxd_md is a descriptor as the bridge passes it (a pointer in
// 2.x, a handle in 3.x); MD turns a stored descriptor into one.
#if DNNL_VERSION_MAJOR >= 3
#define SXD_V3 1
typedef const_dnnl_memory_desc_t sxd_md;
#define MD(x) (x)
#define SXD_LIBDNNL "libdnnl.so.3"
#else
#define SXD_V3 0
typedef const dnnl_memory_desc_t *sxd_md;
#define MD(x) (&(x))
#define SXD_LIBDNNL "libdnnl.so.2"
#endif

// libdnnl is loaded with dlopen on first use rather than linked, so that
// its OpenMP runtime (libgomp, which reads its settings from the
// environment once, when it is loaded) starts after ops/dnnl.go has chosen
// its wait policy. Every oneDNN function used here is called through a
// pointer of the header's own type; the macros below route the calls.
#define SXD_FUNCS_COMMON(X)                    \
	X(dnnl_engine_create)                      \
	X(dnnl_engine_destroy)                     \
	X(dnnl_memory_create)                      \
	X(dnnl_memory_desc_equal)                  \
	X(dnnl_memory_desc_get_size)               \
	X(dnnl_memory_destroy)                     \
	X(dnnl_memory_set_data_handle)             \
	X(dnnl_primitive_attr_create)              \
	X(dnnl_primitive_attr_destroy)             \
	X(dnnl_primitive_attr_set_scratchpad_mode) \
	X(dnnl_primitive_create)                   \
	X(dnnl_primitive_desc_clone)               \
	X(dnnl_primitive_desc_destroy)             \
	X(dnnl_primitive_desc_query)               \
	X(dnnl_primitive_desc_query_md)            \
	X(dnnl_primitive_destroy)                  \
	X(dnnl_primitive_execute)                  \
	X(dnnl_reorder_primitive_desc_create)      \
	X(dnnl_status2str)                         \
	X(dnnl_stream_create)                      \
	X(dnnl_stream_destroy)                     \
	X(dnnl_stream_wait)                         \
	X(dnnl_version)
#if SXD_V3
#define SXD_FUNCS(X)                                             \
	SXD_FUNCS_COMMON(X)                                          \
	X(dnnl_batch_normalization_backward_primitive_desc_create)   \
	X(dnnl_batch_normalization_forward_primitive_desc_create)    \
	X(dnnl_convolution_backward_data_primitive_desc_create)      \
	X(dnnl_convolution_backward_weights_primitive_desc_create)   \
	X(dnnl_convolution_forward_primitive_desc_create)            \
	X(dnnl_memory_desc_create_with_tag)                          \
	X(dnnl_memory_desc_destroy)                                  \
	X(dnnl_memory_desc_query)
#else
#define SXD_FUNCS(X)                               \
	SXD_FUNCS_COMMON(X)                            \
	X(dnnl_batch_normalization_backward_desc_init) \
	X(dnnl_batch_normalization_forward_desc_init)  \
	X(dnnl_convolution_backward_data_desc_init)    \
	X(dnnl_convolution_backward_weights_desc_init) \
	X(dnnl_convolution_forward_desc_init)          \
	X(dnnl_memory_desc_init_by_tag)                \
	X(dnnl_primitive_desc_create)
#endif

#define SXD_DECLARE(name) static __typeof__(&name) p_##name;
SXD_FUNCS(SXD_DECLARE)

#define dnnl_engine_create (*p_dnnl_engine_create)
#define dnnl_engine_destroy (*p_dnnl_engine_destroy)
#define dnnl_memory_create (*p_dnnl_memory_create)
#define dnnl_memory_desc_equal (*p_dnnl_memory_desc_equal)
#define dnnl_memory_desc_get_size (*p_dnnl_memory_desc_get_size)
#define dnnl_memory_destroy (*p_dnnl_memory_destroy)
#define dnnl_memory_set_data_handle (*p_dnnl_memory_set_data_handle)
#define dnnl_primitive_attr_create (*p_dnnl_primitive_attr_create)
#define dnnl_primitive_attr_destroy (*p_dnnl_primitive_attr_destroy)
#define dnnl_primitive_attr_set_scratchpad_mode (*p_dnnl_primitive_attr_set_scratchpad_mode)
#define dnnl_primitive_create (*p_dnnl_primitive_create)
#define dnnl_primitive_desc_clone (*p_dnnl_primitive_desc_clone)
#define dnnl_primitive_desc_destroy (*p_dnnl_primitive_desc_destroy)
#define dnnl_primitive_desc_query (*p_dnnl_primitive_desc_query)
#define dnnl_primitive_desc_query_md (*p_dnnl_primitive_desc_query_md)
#define dnnl_primitive_destroy (*p_dnnl_primitive_destroy)
#define dnnl_primitive_execute (*p_dnnl_primitive_execute)
#define dnnl_reorder_primitive_desc_create (*p_dnnl_reorder_primitive_desc_create)
#define dnnl_status2str (*p_dnnl_status2str)
#define dnnl_stream_create (*p_dnnl_stream_create)
#define dnnl_stream_destroy (*p_dnnl_stream_destroy)
#define dnnl_stream_wait (*p_dnnl_stream_wait)
#define dnnl_version (*p_dnnl_version)
#if SXD_V3
#define dnnl_batch_normalization_backward_primitive_desc_create (*p_dnnl_batch_normalization_backward_primitive_desc_create)
#define dnnl_batch_normalization_forward_primitive_desc_create (*p_dnnl_batch_normalization_forward_primitive_desc_create)
#define dnnl_convolution_backward_data_primitive_desc_create (*p_dnnl_convolution_backward_data_primitive_desc_create)
#define dnnl_convolution_backward_weights_primitive_desc_create (*p_dnnl_convolution_backward_weights_primitive_desc_create)
#define dnnl_convolution_forward_primitive_desc_create (*p_dnnl_convolution_forward_primitive_desc_create)
#define dnnl_memory_desc_create_with_tag (*p_dnnl_memory_desc_create_with_tag)
#define dnnl_memory_desc_destroy (*p_dnnl_memory_desc_destroy)
#define dnnl_memory_desc_query (*p_dnnl_memory_desc_query)
#else
#define dnnl_batch_normalization_backward_desc_init (*p_dnnl_batch_normalization_backward_desc_init)
#define dnnl_batch_normalization_forward_desc_init (*p_dnnl_batch_normalization_forward_desc_init)
#define dnnl_convolution_backward_data_desc_init (*p_dnnl_convolution_backward_data_desc_init)
#define dnnl_convolution_backward_weights_desc_init (*p_dnnl_convolution_backward_weights_desc_init)
#define dnnl_convolution_forward_desc_init (*p_dnnl_convolution_forward_desc_init)
#define dnnl_memory_desc_init_by_tag (*p_dnnl_memory_desc_init_by_tag)
#define dnnl_primitive_desc_create (*p_dnnl_primitive_desc_create)
#endif

static void *lib;
static char load_err[512];

static char version_str[32];

static int sxd_load(const char *path) {
	if (lib) return 0;
	if (!path || !*path) path = SXD_LIBDNNL;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(load_err, sizeof load_err, "load %s: %s", path, dlerror());
		return SXD_LOAD_ERROR;
	}
#define SXD_RESOLVE(name)                                                    \
	if (!(*(void **)&p_##name = dlsym(h, #name))) {                          \
		snprintf(load_err, sizeof load_err, "%s: no symbol %s", path, #name); \
		dlclose(h);                                                          \
		return SXD_LOAD_ERROR;                                               \
	}
	SXD_FUNCS(SXD_RESOLVE)
	const dnnl_version_t *v = dnnl_version();
	if (v->major != DNNL_VERSION_MAJOR) {
		snprintf(load_err, sizeof load_err, "%s is oneDNN %d.%d, this bridge was built for %d.x", path, v->major,
				v->minor, DNNL_VERSION_MAJOR);
		dlclose(h);
		return SXD_LOAD_ERROR;
	}
	snprintf(version_str, sizeof version_str, "%d.%d.%d", v->major, v->minor, v->patch);
	lib = h;
	return 0;
}

static const char *sxd_version(void) { return lib ? version_str : ""; }

#define CHECK(call)                               \
	do {                                          \
		dnnl_status_t st_ = (call);               \
		if (st_ != dnnl_success) return (int)st_; \
	} while (0)

enum { NSLOT = 4, SLOT_SCRATCH = 3 };

// A context is a oneDNN stream and its work buffers. The default context
// serves every thread with none bound (in practice ops/dnnl.go's one
// engine thread); an ops.Stream has one of its own, bound to the calling
// thread for the duration of each call (sxd_bind), so two streams can run
// primitives at the same time.
struct sxd_ctx {
	dnnl_stream_t strm;
	void *slot[NSLOT];
	size_t cap[NSLOT];
	int threads; // OpenMP team size while bound (0: leave it)
	int prev;    // the thread's team size before sxd_bind
};

static struct {
	int ready;
	dnnl_engine_t eng;
	sxd_ctx def;
} g;

static __thread sxd_ctx *tctx;

static sxd_ctx *ctx(void) { return tctx ? tctx : &g.def; }

static void ctx_free(sxd_ctx *c) {
	for (int i = 0; i < NSLOT; i++) {
		free(c->slot[i]);
		c->slot[i] = NULL;
		c->cap[i] = 0;
	}
	if (c->strm) dnnl_stream_destroy(c->strm);
	c->strm = NULL;
}

static int sxd_init(void) {
	if (g.ready) return dnnl_success;
	if (!lib) return SXD_LOAD_ERROR;
	CHECK(dnnl_engine_create(&g.eng, dnnl_cpu, 0));
	dnnl_status_t st = dnnl_stream_create(&g.def.strm, g.eng, dnnl_stream_default_flags);
	if (st != dnnl_success) {
		dnnl_engine_destroy(g.eng);
		g.eng = NULL;
		return (int)st;
	}
	g.ready = 1;
	return dnnl_success;
}

static void sxd_shutdown(void) {
	ctx_free(&g.def);
	if (g.eng) dnnl_engine_destroy(g.eng);
	g.eng = NULL;
	g.ready = 0;
}

static void (*p_omp_set_num_threads)(int);
static int (*p_omp_get_max_threads)(void);

static int sxd_ctx_create(int threads, sxd_ctx **out) {
	*out = NULL;
	if (!g.ready) return dnnl_invalid_arguments;
	if (threads > 0 && !p_omp_set_num_threads) {
		// libgomp, loaded with libdnnl, keeps the team size per thread.
		*(void **)&p_omp_set_num_threads = dlsym(lib, "omp_set_num_threads");
		*(void **)&p_omp_get_max_threads = dlsym(lib, "omp_get_max_threads");
		if (!p_omp_set_num_threads || !p_omp_get_max_threads) {
			p_omp_set_num_threads = NULL;
			snprintf(load_err, sizeof load_err, "%s: no symbol omp_set_num_threads / omp_get_max_threads", SXD_LIBDNNL);
			return SXD_LOAD_ERROR;
		}
	}
	sxd_ctx *c = calloc(1, sizeof *c);
	if (!c) return dnnl_out_of_memory;
	dnnl_status_t st = dnnl_stream_create(&c->strm, g.eng, dnnl_stream_default_flags);
	if (st != dnnl_success) {
		free(c);
		return (int)st;
	}
	c->threads = threads;
	*out = c;
	return dnnl_success;
}

static void sxd_ctx_destroy(sxd_ctx *c) {
	if (!c) return;
	ctx_free(c);
	free(c);
}

static void sxd_bind(sxd_ctx *c) {
	if (c) {
		if (c->threads > 0) {
			c->prev = p_omp_get_max_threads();
			p_omp_set_num_threads(c->threads);
		}
	} else if (tctx && tctx->threads > 0) {
		p_omp_set_num_threads(tctx->prev);
	}
	tctx = c;
}

// slot returns the calling thread's work buffer i with at least size
// bytes (64-byte aligned).
static void *slot(int i, size_t size) {
	sxd_ctx *c = ctx();
	if (size == 0) size = 64;
	if (c->cap[i] < size) {
		free(c->slot[i]);
		size_t sz = (size + 4095) & ~(size_t)4095;
		c->slot[i] = aligned_alloc(64, sz);
		c->cap[i] = c->slot[i] ? sz : 0;
	}
	return c->slot[i];
}

// An argument of one pass.
typedef struct {
	int arg;                 // DNNL_ARG_*
	int plain;               // index into sxd_conv.plain
	int is_out;              // written by the primitive
	dnnl_memory_t user;      // plain layout; handle set per call
	dnnl_memory_t mem;       // primitive's layout; == user when no reorder
	dnnl_primitive_t reorder; // user->mem (input) or mem->user (output)
	size_t size;             // bytes of mem
} sxd_arg;

typedef struct {
	int ready;
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t prim;
	sxd_arg a[3];
	dnnl_memory_t scratch;
	size_t scratch_size;
	char info[256];
} sxd_pass;

struct sxd_conv {
	dnnl_memory_desc_t plain[3]; // 0: x NCHW, 1: w OIHW, 2: y NCHW
	dnnl_memory_desc_t any[3];   // same dims, format_tag any
	dnnl_memory_desc_t anyb[3];  // bfloat16, format_tag any (bf16 set)
	int bf16;                    // inputs in bfloat16, outputs float32
	dnnl_dims_t strides, pad;
	dnnl_primitive_desc_t fwd_pd; // forward descriptor, hint for backward
	sxd_pass pass[3];
};

// SXD_CONV_ALG lets oneDNN choose the algorithm of each convolution: on
// AVX-512 it takes Winograd F(4x4, 3x3) kernels for 3x3 stride-1
// convolutions of training size (all three passes), direct ones elsewhere.
// Measured on 2 cores: resnet18c batch 64 trains at 161-165 img/s instead
// of 118-120 with dnnl_convolution_direct; ops/dnnl_test.go checks the
// Winograd passes against the float64 path (relative error about 1e-6).
#ifndef SXD_CONV_ALG
#define SXD_CONV_ALG dnnl_convolution_auto
#endif

// layout_tag is oneDNN's tag for a caller's layout (SXD_NCHW, ...).
static dnnl_format_tag_t layout_tag(int l) {
	return l == SXD_NCHW16C ? dnnl_nChw16c : l == SXD_NHWC ? dnnl_nhwc : dnnl_nchw;
}

// md_init makes a descriptor of dims in tag and type dt; md_free frees
// one (2.x's are plain structs).
static dnnl_status_t md_init(dnnl_memory_desc_t *md, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt,
		dnnl_format_tag_t tag) {
#if SXD_V3
	return dnnl_memory_desc_create_with_tag(md, nd, dims, dt, tag);
#else
	return dnnl_memory_desc_init_by_tag(md, nd, dims, dt, tag);
#endif
}

static void md_free(dnnl_memory_desc_t *md) {
#if SXD_V3
	if (*md) dnnl_memory_desc_destroy(*md);
	*md = NULL;
#else
	(void)md;
#endif
}

// pass_mds are the descriptors a pass is created with ({x, w, y} with
// format any): with bf16, its inputs in bfloat16 and its output in
// float32.
static void pass_mds(sxd_conv *cv, int pass, sxd_md m[3]) {
	int out = pass == SXD_FWD ? 2 : pass == SXD_BWD_DATA ? 0 : 1;
	for (int i = 0; i < 3; i++) m[i] = cv->bf16 && i != out ? MD(cv->anyb[i]) : MD(cv->any[i]);
}

static dnnl_status_t make_pd(sxd_conv *cv, int pass, dnnl_primitive_desc_t *pd) {
	sxd_md m[3];
	pass_mds(cv, pass, m);
	dnnl_primitive_attr_t attr;
	dnnl_status_t st = dnnl_primitive_attr_create(&attr);
	if (st != dnnl_success) return st;
	st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
	if (st != dnnl_success) {
		dnnl_primitive_attr_destroy(attr);
		return st;
	}
#if SXD_V3
	dnnl_dims_t dil = {0, 0};
	switch (pass) {
	case SXD_FWD:
		st = dnnl_convolution_forward_primitive_desc_create(pd, g.eng, dnnl_forward_training, SXD_CONV_ALG,
				m[0], m[1], NULL, m[2], cv->strides, dil, cv->pad, cv->pad, attr);
		break;
	case SXD_BWD_DATA:
		st = dnnl_convolution_backward_data_primitive_desc_create(pd, g.eng, SXD_CONV_ALG,
				m[0], m[1], m[2], cv->strides, dil, cv->pad, cv->pad, cv->fwd_pd, attr);
		break;
	case SXD_BWD_WEIGHTS:
		st = dnnl_convolution_backward_weights_primitive_desc_create(pd, g.eng, SXD_CONV_ALG,
				m[0], m[1], NULL, m[2], cv->strides, dil, cv->pad, cv->pad, cv->fwd_pd, attr);
		break;
	default:
		st = dnnl_invalid_arguments;
	}
#else
	dnnl_convolution_desc_t d;
	switch (pass) {
	case SXD_FWD:
		st = dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, SXD_CONV_ALG,
				m[0], m[1], NULL, m[2], cv->strides, cv->pad, cv->pad);
		break;
	case SXD_BWD_DATA:
		st = dnnl_convolution_backward_data_desc_init(&d, SXD_CONV_ALG,
				m[0], m[1], m[2], cv->strides, cv->pad, cv->pad);
		break;
	case SXD_BWD_WEIGHTS:
		st = dnnl_convolution_backward_weights_desc_init(&d, SXD_CONV_ALG,
				m[0], m[1], NULL, m[2], cv->strides, cv->pad, cv->pad);
		break;
	default:
		st = dnnl_invalid_arguments;
	}
	if (st == dnnl_success)
		st = dnnl_primitive_desc_create(pd, &d, attr, g.eng, pass == SXD_FWD ? NULL : cv->fwd_pd);
#endif
	dnnl_primitive_attr_destroy(attr);
	return st;
}

static void sxd_conv_destroy(sxd_conv *cv);

static int sxd_conv_create(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k, int64_t s, int64_t p,
		int xl, int yl, int bf16, sxd_conv **out) {
	*out = NULL;
	if (!g.ready) return dnnl_invalid_arguments;
	sxd_conv *cv = calloc(1, sizeof *cv);
	if (!cv) return dnnl_out_of_memory;
	int64_t oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
	dnnl_dims_t dims[3] = {{n, c, h, w}, {o, c, k, k}, {n, o, oh, ow}};
	dnnl_format_tag_t tags[3] = {layout_tag(xl), dnnl_oihw, layout_tag(yl)};
	dnnl_status_t st = dnnl_success;
	cv->bf16 = bf16;
	for (int i = 0; i < 3 && st == dnnl_success; i++) {
		st = md_init(&cv->plain[i], 4, dims[i], dnnl_f32, tags[i]);
		if (st == dnnl_success) st = md_init(&cv->any[i], 4, dims[i], dnnl_f32, dnnl_format_tag_any);
		if (st == dnnl_success && cv->bf16) st = md_init(&cv->anyb[i], 4, dims[i], dnnl_bf16, dnnl_format_tag_any);
	}
	cv->strides[0] = cv->strides[1] = s;
	cv->pad[0] = cv->pad[1] = p;
	if (st == dnnl_success) st = make_pd(cv, SXD_FWD, &cv->fwd_pd);
	if (st != dnnl_success) {
		sxd_conv_destroy(cv);
		return (int)st;
	}
	*out = cv;
	return dnnl_success;
}

// Arguments of each pass: {DNNL_ARG, plain index, query of its layout, output}.
static const struct {
	int arg, plain, is_out;
	dnnl_query_t q;
} args[3][3] = {
	[SXD_FWD] = {{DNNL_ARG_SRC, 0, 0, dnnl_query_src_md},
			{DNNL_ARG_WEIGHTS, 1, 0, dnnl_query_weights_md},
			{DNNL_ARG_DST, 2, 1, dnnl_query_dst_md}},
	[SXD_BWD_DATA] = {{DNNL_ARG_DIFF_DST, 2, 0, dnnl_query_diff_dst_md},
			{DNNL_ARG_WEIGHTS, 1, 0, dnnl_query_weights_md},
			{DNNL_ARG_DIFF_SRC, 0, 1, dnnl_query_diff_src_md}},
	[SXD_BWD_WEIGHTS] = {{DNNL_ARG_SRC, 0, 0, dnnl_query_src_md},
			{DNNL_ARG_DIFF_DST, 2, 0, dnnl_query_diff_dst_md},
			{DNNL_ARG_DIFF_WEIGHTS, 1, 1, dnnl_query_diff_weights_md}},
};

// dt_str names a descriptor's data type ("f32", "bf16").
static const char *dt_str(sxd_md md) {
	dnnl_data_type_t dt;
#if SXD_V3
	if (dnnl_memory_desc_query(md, dnnl_query_data_type, &dt) != dnnl_success) return "?";
#else
	dt = md->data_type;
#endif
	return dt == dnnl_f32 ? "f32" : dt == dnnl_bf16 ? "bf16" : "other";
}

// fmt_str writes a short layout name in oneDNN's own notation ("abcd",
// "aBcd16b", "ABcd16b16a", ...) for a blocked memory descriptor.
static void fmt_str(sxd_md md, char *buf, size_t len) {
	int nd, nblks;
	const int64_t *strides, *blks, *idxs;
#if SXD_V3
	dnnl_format_kind_t fk = dnnl_format_kind_undef;
	dnnl_memory_desc_query(md, dnnl_query_format_kind, &fk);
	if (fk != dnnl_blocked) {
		snprintf(buf, len, "kind%d", (int)fk);
		return;
	}
	const dnnl_dims_t *sp = NULL, *bp = NULL, *ip = NULL;
	dnnl_memory_desc_query(md, dnnl_query_ndims_s32, &nd);
	dnnl_memory_desc_query(md, dnnl_query_inner_nblks_s32, &nblks);
	dnnl_memory_desc_query(md, dnnl_query_strides, &sp);
	dnnl_memory_desc_query(md, dnnl_query_inner_blks, &bp);
	dnnl_memory_desc_query(md, dnnl_query_inner_idxs, &ip);
	if (!sp || !bp || !ip) {
		snprintf(buf, len, "?");
		return;
	}
	strides = *sp, blks = *bp, idxs = *ip;
#else
	if (md->format_kind != dnnl_blocked) {
		snprintf(buf, len, "kind%d", (int)md->format_kind);
		return;
	}
	const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
	nd = md->ndims, nblks = b->inner_nblks, strides = b->strides, blks = b->inner_blks, idxs = b->inner_idxs;
#endif
	int order[DNNL_MAX_NDIMS];
	for (int i = 0; i < nd; i++) order[i] = i;
	for (int i = 1; i < nd; i++) // stable insertion sort by stride, descending
		for (int j = i; j > 0 && strides[order[j]] > strides[order[j - 1]]; j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	size_t n = 0;
	for (int i = 0; i < nd && n + 1 < len; i++) {
		int d = order[i], blocked = 0;
		for (int j = 0; j < nblks; j++) blocked |= idxs[j] == d;
		buf[n++] = (char)((blocked ? 'A' : 'a') + d);
	}
	buf[n] = 0;
	for (int j = 0; j < nblks && n + 1 < len; j++)
		n += (size_t)snprintf(buf + n, len - n, "%lld%c", (long long)blks[j], 'a' + (int)idxs[j]);
}

static dnnl_status_t pass_init(sxd_conv *cv, int pass) {
	sxd_pass *ps = &cv->pass[pass];
	dnnl_status_t st = pass == SXD_FWD ? dnnl_primitive_desc_clone(&ps->pd, cv->fwd_pd) : make_pd(cv, pass, &ps->pd);
	if (st != dnnl_success) return st;
	CHECK(dnnl_primitive_create(&ps->prim, ps->pd));
	const char *impl = "?";
	dnnl_primitive_desc_query(ps->pd, dnnl_query_impl_info_str, 0, &impl);
	size_t n = (size_t)snprintf(ps->info, sizeof ps->info, "%s", impl);
	for (int i = 0; i < 3; i++) {
		sxd_arg *a = &ps->a[i];
		a->arg = args[pass][i].arg;
		a->plain = args[pass][i].plain;
		a->is_out = args[pass][i].is_out;
		sxd_md md = dnnl_primitive_desc_query_md(ps->pd, args[pass][i].q, 0);
		if (!md) return dnnl_runtime_error;
		sxd_md pl = MD(cv->plain[a->plain]);
		CHECK(dnnl_memory_create(&a->user, pl, g.eng, DNNL_MEMORY_NONE));
		if (n + 2 < sizeof ps->info) {
			char f[64];
			fmt_str(md, f, sizeof f);
			n += (size_t)snprintf(ps->info + n, sizeof ps->info - n, " %s:%s", f, dt_str(md));
		}
		if (dnnl_memory_desc_equal(md, pl)) {
			a->mem = a->user;
			continue;
		}
		a->size = dnnl_memory_desc_get_size(md);
		CHECK(dnnl_memory_create(&a->mem, md, g.eng, DNNL_MEMORY_NONE));
		dnnl_primitive_desc_t rpd;
		if (a->is_out)
			CHECK(dnnl_reorder_primitive_desc_create(&rpd, md, g.eng, pl, g.eng, NULL));
		else
			CHECK(dnnl_reorder_primitive_desc_create(&rpd, pl, g.eng, md, g.eng, NULL));
		st = dnnl_primitive_create(&a->reorder, rpd);
		dnnl_primitive_desc_destroy(rpd);
		if (st != dnnl_success) return st;
	}
	sxd_md smd = dnnl_primitive_desc_query_md(ps->pd, dnnl_query_scratchpad_md, 0);
	if (smd && (ps->scratch_size = dnnl_memory_desc_get_size(smd)) > 0)
		CHECK(dnnl_memory_create(&ps->scratch, smd, g.eng, DNNL_MEMORY_NONE));
	ps->ready = 1;
	return dnnl_success;
}

static void pass_free(sxd_pass *ps) {
	for (int i = 0; i < 3; i++) {
		sxd_arg *a = &ps->a[i];
		if (a->reorder) dnnl_primitive_destroy(a->reorder);
		if (a->mem && a->mem != a->user) dnnl_memory_destroy(a->mem);
		if (a->user) dnnl_memory_destroy(a->user);
	}
	if (ps->scratch) dnnl_memory_destroy(ps->scratch);
	if (ps->prim) dnnl_primitive_destroy(ps->prim);
	if (ps->pd) dnnl_primitive_desc_destroy(ps->pd);
	memset(ps, 0, sizeof *ps);
}

static int reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
	dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
	return (int)dnnl_primitive_execute(r, ctx()->strm, 2, ra);
}

static int exec(sxd_pass *ps, const float *ptr[3]) {
	for (int i = 0; i < 3; i++) {
		sxd_arg *a = &ps->a[i];
		CHECK(dnnl_memory_set_data_handle(a->user, (void *)ptr[i]));
		if (a->mem == a->user) continue;
		void *buf = slot(i, a->size);
		if (!buf) return dnnl_out_of_memory;
		CHECK(dnnl_memory_set_data_handle(a->mem, buf));
		if (!a->is_out) CHECK(reorder(a->reorder, a->user, a->mem));
	}
	dnnl_exec_arg_t ea[4];
	int na = 0;
	for (int i = 0; i < 3; i++) ea[na++] = (dnnl_exec_arg_t){ps->a[i].arg, ps->a[i].mem};
	if (ps->scratch) {
		void *buf = slot(SLOT_SCRATCH, ps->scratch_size);
		if (!buf) return dnnl_out_of_memory;
		CHECK(dnnl_memory_set_data_handle(ps->scratch, buf));
		ea[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, ps->scratch};
	}
	CHECK(dnnl_primitive_execute(ps->prim, ctx()->strm, na, ea));
	if (ps->a[2].mem != ps->a[2].user) CHECK(reorder(ps->a[2].reorder, ps->a[2].mem, ps->a[2].user));
	CHECK(dnnl_stream_wait(ctx()->strm));
	return dnnl_success;
}

static int sxd_conv_exec(sxd_conv *cv, int pass, const float *in0, const float *in1, float *out) {
	if (!cv || pass < 0 || pass > 2 || !g.ready) return dnnl_invalid_arguments;
	sxd_pass *ps = &cv->pass[pass];
	if (!ps->ready) {
		dnnl_status_t st = pass_init(cv, pass);
		if (st != dnnl_success) {
			pass_free(ps);
			return (int)st;
		}
	}
	const float *ptr[3] = {in0, in1, out};
	int st = exec(ps, ptr);
	// Drop the caller's pointers: they belong to Go and are pinned only
	// for the duration of this call.
	for (int i = 0; i < 3; i++) dnnl_memory_set_data_handle(ps->a[i].user, NULL);
	return st;
}

static const char *sxd_conv_impl(sxd_conv *cv, int pass) {
	if (!cv || pass < 0 || pass > 2) return "invalid arguments";
	sxd_pass *ps = &cv->pass[pass];
	if (!ps->ready) {
		dnnl_status_t st = pass_init(cv, pass);
		if (st != dnnl_success) {
			pass_free(ps);
			return dnnl_status2str(st);
		}
	}
	return ps->info;
}

static void sxd_conv_destroy(sxd_conv *cv) {
	if (!cv) return;
	for (int i = 0; i < 3; i++) pass_free(&cv->pass[i]);
	if (cv->fwd_pd) dnnl_primitive_desc_destroy(cv->fwd_pd);
	for (int i = 0; i < 3; i++) {
		md_free(&cv->plain[i]);
		md_free(&cv->any[i]);
		md_free(&cv->anyb[i]);
	}
	free(cv);
}

static const char *sxd_status_str(int status) {
	if (status == SXD_LOAD_ERROR) return load_err[0] ? load_err : "oneDNN is not loaded";
	if (!lib) return "unknown status (oneDNN is not loaded)";
	return dnnl_status2str((dnnl_status_t)status);
}

// Batch normalisation over one data layout (nchw or nChw16c), float32,
// with separate scale and shift, optionally followed by a fused ReLU. Up
// to four primitives are made on first use: forward with batch statistics
// (training), forward with given statistics (inference), and the backward
// pass of each. With the ReLU fused, the training forward pass writes a
// workspace (which outputs were positive) that its backward pass reads;
// the backward pass with given statistics has no ReLU (the caller masks
// dy first).
enum { BN_FWD_TRAIN, BN_FWD_GLOBAL, BN_BWD_TRAIN, BN_BWD_GLOBAL, BN_NPRIM };

struct sxd_bn {
	dnnl_memory_desc_t data, stat; // data [N,C,H,W] in its layout; stat [C]
	float eps;
	int relu;
	dnnl_primitive_desc_t pd[BN_NPRIM];
	dnnl_primitive_t prim[BN_NPRIM];
	size_t scratch[BN_NPRIM];
};

static void sxd_bn_destroy(sxd_bn *bn);

static int sxd_bn_create(int64_t n, int64_t c, int64_t h, int64_t w, float eps, int l, int relu, sxd_bn **out) {
	*out = NULL;
	if (!g.ready) return dnnl_invalid_arguments;
	sxd_bn *bn = calloc(1, sizeof *bn);
	if (!bn) return dnnl_out_of_memory;
	dnnl_dims_t dd = {n, c, h, w}, sd = {c};
	dnnl_status_t st = md_init(&bn->data, 4, dd, dnnl_f32, layout_tag(l));
	if (st == dnnl_success) st = md_init(&bn->stat, 1, sd, dnnl_f32, dnnl_a);
	if (st != dnnl_success) {
		sxd_bn_destroy(bn);
		return (int)st;
	}
	bn->eps = eps;
	bn->relu = relu;
	*out = bn;
	return dnnl_success;
}

static dnnl_status_t bn_prim(sxd_bn *bn, int k) {
	if (bn->prim[k]) return dnnl_success;
	unsigned flags = dnnl_use_scale | dnnl_use_shift;
	int global = k == BN_FWD_GLOBAL || k == BN_BWD_GLOBAL;
	if (global) flags |= dnnl_use_global_stats;
	if (bn->relu && k != BN_BWD_GLOBAL) flags |= dnnl_fuse_norm_relu;
	dnnl_status_t st;
	if (k == BN_BWD_TRAIN) {
		// The backward descriptor needs its forward one as a hint.
		st = bn_prim(bn, BN_FWD_TRAIN);
		if (st != dnnl_success) return st;
	}
	int fwd = k == BN_FWD_TRAIN || k == BN_FWD_GLOBAL;
	dnnl_prop_kind_t prop = global ? dnnl_forward_inference : dnnl_forward_training;
	dnnl_primitive_desc_t hint = NULL;
	if (k == BN_BWD_TRAIN) hint = bn->pd[BN_FWD_TRAIN];
	dnnl_primitive_attr_t attr;
	st = dnnl_primitive_attr_create(&attr);
	if (st != dnnl_success) return st;
	st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
#if SXD_V3
	if (st == dnnl_success && k == BN_BWD_GLOBAL)
		// A forward hint with the same flags (no ReLU): made here, freed below.
		st = dnnl_batch_normalization_forward_primitive_desc_create(&hint, g.eng, dnnl_forward_training,
				bn->data, bn->data, bn->eps, flags, NULL);
	if (st == dnnl_success && fwd)
		st = dnnl_batch_normalization_forward_primitive_desc_create(&bn->pd[k], g.eng, prop, bn->data, bn->data,
				bn->eps, flags, attr);
	else if (st == dnnl_success)
		st = dnnl_batch_normalization_backward_primitive_desc_create(&bn->pd[k], g.eng, dnnl_backward, bn->data,
				bn->data, bn->data, bn->eps, flags, hint, attr);
#else
	dnnl_batch_normalization_desc_t d, hd;
	if (st == dnnl_success && k == BN_BWD_GLOBAL) {
		// A forward hint with the same flags (no ReLU): made here, freed below.
		st = dnnl_batch_normalization_forward_desc_init(&hd, dnnl_forward_training, &bn->data, bn->eps, flags);
		if (st == dnnl_success) st = dnnl_primitive_desc_create(&hint, &hd, NULL, g.eng, NULL);
	}
	if (st == dnnl_success)
		st = fwd ? dnnl_batch_normalization_forward_desc_init(&d, prop, &bn->data, bn->eps, flags)
		         : dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, &bn->data, &bn->data, bn->eps, flags);
	if (st == dnnl_success) st = dnnl_primitive_desc_create(&bn->pd[k], &d, attr, g.eng, hint);
#endif
	dnnl_primitive_attr_destroy(attr);
	if (k == BN_BWD_GLOBAL && hint) dnnl_primitive_desc_destroy(hint);
	if (st != dnnl_success) return st;
	sxd_md smd = dnnl_primitive_desc_query_md(bn->pd[k], dnnl_query_scratchpad_md, 0);
	bn->scratch[k] = smd ? dnnl_memory_desc_get_size(smd) : 0;
	return dnnl_primitive_create(&bn->prim[k], bn->pd[k]);
}

static int64_t sxd_bn_workspace_size(sxd_bn *bn) {
	if (!bn || !bn->relu) return 0;
	dnnl_status_t st = bn_prim(bn, BN_FWD_TRAIN);
	if (st != dnnl_success) return -(int64_t)st - 1;
	sxd_md md = dnnl_primitive_desc_query_md(bn->pd[BN_FWD_TRAIN], dnnl_query_workspace_md, 0);
	return md ? (int64_t)dnnl_memory_desc_get_size(md) : 0;
}

// Kinds of bn_exec arguments.
enum { BN_DATA, BN_STAT, BN_WS };

// bn_exec runs primitive k with n arguments; ptrs are the caller's
// buffers, of the kinds in kind.
static int bn_exec(sxd_bn *bn, int k, int n, const int *argk, void *const *ptrs, const int *kind) {
	dnnl_status_t st = bn_prim(bn, k);
	if (st != dnnl_success) return (int)st;
	dnnl_exec_arg_t ea[12];
	dnnl_memory_t mems[12];
	int na = 0;
	for (int i = 0; i < n && st == dnnl_success; i++) {
		sxd_md md = kind[i] == BN_DATA ? MD(bn->data) : MD(bn->stat);
		if (kind[i] == BN_WS) {
			md = dnnl_primitive_desc_query_md(bn->pd[k], dnnl_query_workspace_md, 0);
			if (!md || !ptrs[i]) {
				st = dnnl_invalid_arguments;
				break;
			}
		}
		st = dnnl_memory_create(&mems[na], md, g.eng, ptrs[i]);
		if (st == dnnl_success) {
			ea[na] = (dnnl_exec_arg_t){argk[i], mems[na]};
			na++;
		}
	}
	int nm = na;
	if (st == dnnl_success && bn->scratch[k] > 0) {
		sxd_md smd = dnnl_primitive_desc_query_md(bn->pd[k], dnnl_query_scratchpad_md, 0);
		void *buf = slot(SLOT_SCRATCH, bn->scratch[k]);
		if (!buf) st = dnnl_out_of_memory;
		if (st == dnnl_success) st = dnnl_memory_create(&mems[nm], smd, g.eng, buf);
		if (st == dnnl_success) {
			ea[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mems[nm]};
			nm++;
		}
	}
	if (st == dnnl_success) st = dnnl_primitive_execute(bn->prim[k], ctx()->strm, na, ea);
	if (st == dnnl_success) st = dnnl_stream_wait(ctx()->strm);
	for (int i = 0; i < nm; i++) dnnl_memory_destroy(mems[i]);
	return (int)st;
}

static int sxd_bn_forward(sxd_bn *bn, int training, const float *x, const float *scale, const float *shift,
		float *mean, float *var, float *y, void *ws) {
	if (!bn || !g.ready) return dnnl_invalid_arguments;
	int argk[7] = {DNNL_ARG_SRC, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DST,
			DNNL_ARG_WORKSPACE};
	void *const ptrs[7] = {(void *)x, (void *)scale, (void *)shift, mean, var, y, ws};
	const int kind[7] = {BN_DATA, BN_STAT, BN_STAT, BN_STAT, BN_STAT, BN_DATA, BN_WS};
	int n = training && bn->relu ? 7 : 6;
	return bn_exec(bn, training ? BN_FWD_TRAIN : BN_FWD_GLOBAL, n, argk, ptrs, kind);
}

static int sxd_bn_backward(sxd_bn *bn, int training, const float *x, const float *dy, const float *scale,
		const float *shift, const float *mean, const float *var, float *dx, float *dscale, float *dshift,
		const void *ws) {
	if (!bn || !g.ready) return dnnl_invalid_arguments;
	// oneDNN 2.6 counts the shift among the backward pass's inputs.
	int argk[10] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
			DNNL_ARG_VARIANCE, DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT, DNNL_ARG_WORKSPACE};
	void *ptrs[10] = {(void *)x, (void *)dy, (void *)scale, (void *)shift, (void *)mean, (void *)var, dx,
			dscale, dshift, (void *)ws};
	int kind[10] = {BN_DATA, BN_DATA, BN_STAT, BN_STAT, BN_STAT, BN_STAT, BN_DATA, BN_STAT, BN_STAT, BN_WS};
	int n = training && bn->relu ? 10 : 9;
#if SXD_V3
	// oneDNN 3.x refuses the shift there: drop it.
	for (int i = 3; i + 1 < n; i++) {
		argk[i] = argk[i + 1];
		ptrs[i] = ptrs[i + 1];
		kind[i] = kind[i + 1];
	}
	n--;
#endif
	return bn_exec(bn, training ? BN_BWD_TRAIN : BN_BWD_GLOBAL, n, argk, ptrs, kind);
}

static void sxd_bn_destroy(sxd_bn *bn) {
	if (!bn) return;
	for (int k = 0; k < BN_NPRIM; k++) {
		if (bn->prim[k]) dnnl_primitive_destroy(bn->prim[k]);
		if (bn->pd[k]) dnnl_primitive_desc_destroy(bn->pd[k]);
	}
	md_free(&bn->data);
	md_free(&bn->stat);
	free(bn);
}

const sxd_api SXD_API_NAME = {
	.major = DNNL_VERSION_MAJOR,
	.soname = SXD_LIBDNNL,
	.load = sxd_load,
	.version = sxd_version,
	.init = sxd_init,
	.shutdown = sxd_shutdown,
	.ctx_create = sxd_ctx_create,
	.ctx_destroy = sxd_ctx_destroy,
	.bind = sxd_bind,
	.conv_create = sxd_conv_create,
	.conv_exec = sxd_conv_exec,
	.conv_impl = sxd_conv_impl,
	.conv_destroy = sxd_conv_destroy,
	.status_str = sxd_status_str,
	.bn_create = sxd_bn_create,
	.bn_workspace_size = sxd_bn_workspace_size,
	.bn_forward = sxd_bn_forward,
	.bn_backward = sxd_bn_backward,
	.bn_destroy = sxd_bn_destroy,
};
