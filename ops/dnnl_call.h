// dnnl_call.h: calls through a bridge table (dnnl_bridge.h) for cgo, which
// cannot call C function pointers itself. Included by ops/dnnl.go only.

#ifndef SELFSUP_DNNL_CALL_H
#define SELFSUP_DNNL_CALL_H

#include "dnnl_bridge.h"

static inline int api_major(const sxd_api *a) { return a->major; }
static inline const char *api_soname(const sxd_api *a) { return a->soname; }
static inline int api_load(const sxd_api *a, const char *path) { return a->load(path); }
static inline const char *api_version(const sxd_api *a) { return a->version(); }
static inline int api_init(const sxd_api *a) { return a->init(); }
static inline void api_shutdown(const sxd_api *a) { a->shutdown(); }
static inline int api_ctx_create(const sxd_api *a, int threads, sxd_ctx **out) { return a->ctx_create(threads, out); }
static inline void api_ctx_destroy(const sxd_api *a, sxd_ctx *c) { a->ctx_destroy(c); }
static inline void api_bind(const sxd_api *a, sxd_ctx *c) { a->bind(c); }
static inline int api_conv_create(const sxd_api *a, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t k,
		int64_t s, int64_t p, int xl, int yl, int bf16, sxd_conv **out) {
	return a->conv_create(n, c, h, w, o, k, s, p, xl, yl, bf16, out);
}
static inline int api_conv_exec(const sxd_api *a, sxd_conv *cv, int pass, const float *in0, const float *in1,
		float *out) {
	return a->conv_exec(cv, pass, in0, in1, out);
}
static inline const char *api_conv_impl(const sxd_api *a, sxd_conv *cv, int pass) { return a->conv_impl(cv, pass); }
static inline void api_conv_destroy(const sxd_api *a, sxd_conv *cv) { a->conv_destroy(cv); }
static inline const char *api_status_str(const sxd_api *a, int st) { return a->status_str(st); }
static inline int api_bn_create(const sxd_api *a, int64_t n, int64_t c, int64_t h, int64_t w, float eps, int l,
		int relu, sxd_bn **out) {
	return a->bn_create(n, c, h, w, eps, l, relu, out);
}
static inline int64_t api_bn_workspace_size(const sxd_api *a, sxd_bn *bn) { return a->bn_workspace_size(bn); }
static inline int api_bn_forward(const sxd_api *a, sxd_bn *bn, int training, const float *x, const float *scale,
		const float *shift, float *mean, float *var, float *y, void *ws) {
	return a->bn_forward(bn, training, x, scale, shift, mean, var, y, ws);
}
static inline int api_bn_backward(const sxd_api *a, sxd_bn *bn, int training, const float *x, const float *dy,
		const float *scale, const float *shift, const float *mean, const float *var, float *dx, float *dscale,
		float *dshift, const void *ws) {
	return a->bn_backward(bn, training, x, dy, scale, shift, mean, var, dx, dscale, dshift, ws);
}
static inline void api_bn_destroy(const sxd_api *a, sxd_bn *bn) { a->bn_destroy(bn); }

#endif
