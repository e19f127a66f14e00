/* CPU implementation of the edge_preproc C API (libedge_preproc_cpu.so).
 *
 * Same per-pixel code as the CUDA kernel (preproc_math.h), one thread, no SIMD: it exists so
 * the math and the Python binding are tested for real on machines without a GPU, and as the
 * reference the CUDA build is compared with on a GPU machine. */
#include <stdint.h>

#include "edge_preproc.h"
#include "preproc_host.h"
#include "preproc_math.h"

struct edge_pp_context {
    int unused;
};

namespace {

using edge_pp::Plan;

/* Runs the whole crop; `second` (the apex) may be NULL. */
void run(const Plan& plan, const uint8_t* first, const uint8_t* second, void* out) {
    size_t plane = (size_t)plan.out_width * (size_t)plan.out_height;
    float* out32 = static_cast<float*>(out);
    uint16_t* out16 = static_cast<uint16_t*>(out);
    for (int y = 0; y < plan.out_height; ++y) {
        for (int x = 0; x < plan.out_width; ++x) {
            float v[3];
            edge_pp::normalized_pixel(plan, first, x, y, v);
            if (second != nullptr) {
                float apex[3];
                edge_pp::normalized_pixel(plan, second, x, y, apex);
                for (int k = 0; k < 3; ++k) v[k] = apex[k] - v[k];
            }
            size_t at = (size_t)y * (size_t)plan.out_width + (size_t)x;
            for (int k = 0; k < 3; ++k) {
                if (plan.dtype == EDGE_PP_FLOAT16) {
                    out16[k * plane + at] = edge_pp::float_to_half_bits(v[k]);
                } else {
                    out32[k * plane + at] = v[k];
                }
            }
        }
    }
}

int run_checked(edge_pp_context* ctx, const edge_pp_image* first, const edge_pp_image* second,
                const edge_pp_params* params, void* out) {
    Plan plan;
    int status = edge_pp::make_plan(first, second, params, &plan);
    if (status != EDGE_PP_OK) return status;
    if (ctx == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "context is NULL");
    if (out == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "output buffer is NULL");
    run(plan, first->data, second != nullptr ? second->data : nullptr, out);
    return EDGE_PP_OK;
}

int unsupported(const char* what) {
    return edge_pp::fail(EDGE_PP_ERR_UNSUPPORTED,
                         what);
}

}  // namespace

extern "C" {

EDGE_PP_API const char* edge_preproc_backend(void) { return "cpu"; }

EDGE_PP_API int edge_preproc_device_count(void) { return 0; }

EDGE_PP_API int edge_preproc_create(edge_pp_context** ctx) {
    edge_pp::clear_error();
    if (ctx == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "ctx is NULL");
    *ctx = new edge_pp_context{0};
    return EDGE_PP_OK;
}

EDGE_PP_API void edge_preproc_destroy(edge_pp_context* ctx) { delete ctx; }

EDGE_PP_API int edge_preproc_warp_normalize(edge_pp_context* ctx, const edge_pp_image* frame,
                                            const edge_pp_params* params, void* out) {
    return run_checked(ctx, frame, nullptr, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_diff(edge_pp_context* ctx, const edge_pp_image* onset,
                                                 const edge_pp_image* apex,
                                                 const edge_pp_params* params, void* out) {
    if (apex == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "apex image is NULL");
    return run_checked(ctx, onset, apex, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_device(const edge_pp_image*, const edge_pp_params*,
                                                   void*, void*) {
    return unsupported("device pointers need the CUDA build (libedge_preproc.so)");
}

EDGE_PP_API int edge_preproc_warp_normalize_diff_device(const edge_pp_image*,
                                                        const edge_pp_image*,
                                                        const edge_pp_params*, void*, void*) {
    return unsupported("device pointers need the CUDA build (libedge_preproc.so)");
}

EDGE_PP_API int edge_preproc_device_alloc(size_t, void**) {
    return unsupported("device memory needs the CUDA build (libedge_preproc.so)");
}

EDGE_PP_API int edge_preproc_device_free(void*) {
    return unsupported("device memory needs the CUDA build (libedge_preproc.so)");
}

EDGE_PP_API int edge_preproc_copy_to_device(void*, const void*, size_t) {
    return unsupported("device memory needs the CUDA build (libedge_preproc.so)");
}

EDGE_PP_API int edge_preproc_copy_to_host(void*, const void*, size_t) {
    return unsupported("device memory needs the CUDA build (libedge_preproc.so)");
}

EDGE_PP_API int edge_preproc_synchronize(void) {
    return unsupported("synchronize needs the CUDA build (libedge_preproc.so)");
}

}  // extern "C"
