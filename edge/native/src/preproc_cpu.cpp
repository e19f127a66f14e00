/* CPU implementation of the edge_preproc C API (libedge_preproc_cpu.so).
 *
 * Same per-pixel code as the CUDA kernel (preproc_math.h), one thread, no SIMD: it exists so
 * the math and the Python binding are tested for real on machines without a GPU, and as the
 * reference the CUDA build is compared with on a GPU machine. The host-pointer calls go through
 * the same staging code as the CUDA build (source region packed into one buffer, then read
 * through the staged plan), so the region and pitch arithmetic of that path is tested here. */
#include <stdint.h>

#include <vector>

#include "edge_preproc.h"
#include "preproc_host.h"
#include "preproc_math.h"

struct edge_pp_context {
    std::vector<uint8_t> staging; /* reused from call to call, as the CUDA build's pinned one */
};

namespace {

using edge_pp::Frame;
using edge_pp::Plan;

void store(const Plan& plan, const float* v, size_t at, void* out) {
    size_t plane = (size_t)plan.out_width * (size_t)plan.out_height;
    for (int k = 0; k < 3; ++k) {
        if (plan.dtype == EDGE_PP_FLOAT16) {
            static_cast<uint16_t*>(out)[k * plane + at] = edge_pp::float_to_half_bits(v[k]);
        } else {
            static_cast<float*>(out)[k * plane + at] = v[k];
        }
    }
}

/* Runs the whole crop of `frames[0]`, or of frames[1] - frames[0] when `diff`. */
void run(const Plan& plan, const Frame* frames, bool diff, void* out) {
    for (int y = 0; y < plan.out_height; ++y) {
        for (int x = 0; x < plan.out_width; ++x) {
            float v[3];
            edge_pp::normalized_pixel(plan, frames[0], x, y, v);
            if (diff) {
                float apex[3];
                edge_pp::normalized_pixel(plan, frames[1], x, y, apex);
                for (int k = 0; k < 3; ++k) v[k] = apex[k] - v[k];
            }
            store(plan, v, (size_t)y * (size_t)plan.out_width + (size_t)x, out);
        }
    }
}

/* Stages `count` images and runs them: one output per image, or their difference (`diff`). */
int run_staged(edge_pp_context* ctx, const Plan& plan, const edge_pp_image* const* images,
               int count, bool diff, const edge_pp_params* params, void* out) {
    if (ctx == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "context is NULL");
    if (out == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "output buffer is NULL");
    edge_pp::Staging staging = edge_pp::staging_layout(plan, count);
    if (ctx->staging.size() < staging.total_bytes) ctx->staging.resize(staging.total_bytes);
    for (int i = 0; i < count; ++i) {
        for (int row = 0; row < staging.region.height; row += staging.chunk_rows) {
            int end = row + staging.chunk_rows;
            if (end > staging.region.height) end = staging.region.height;
            edge_pp::stage_rows(staging, *images[i], i, row, end, ctx->staging.data());
        }
    }
    Plan staged = edge_pp::staged_plan(plan, staging);
    Frame frames[EDGE_PP_MAX_BATCH];
    for (int i = 0; i < count; ++i) {
        frames[i] = edge_pp::staged_frame(staging, ctx->staging.data(), i);
    }
    if (diff) {
        run(staged, frames, true, out);
        return EDGE_PP_OK;
    }
    size_t bytes = edge_pp::output_bytes(params);
    for (int i = 0; i < count; ++i) {
        run(staged, &frames[i], false, static_cast<uint8_t*>(out) + (size_t)i * bytes);
    }
    return EDGE_PP_OK;
}

int unsupported(const char* what) { return edge_pp::fail(EDGE_PP_ERR_UNSUPPORTED, what); }

}  // namespace

extern "C" {

EDGE_PP_API const char* edge_preproc_backend(void) { return "cpu"; }

EDGE_PP_API int edge_preproc_device_count(void) { return 0; }

EDGE_PP_API int edge_preproc_create(edge_pp_context** ctx) {
    edge_pp::clear_error();
    if (ctx == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "ctx is NULL");
    *ctx = new edge_pp_context();
    return EDGE_PP_OK;
}

EDGE_PP_API void edge_preproc_destroy(edge_pp_context* ctx) { delete ctx; }

EDGE_PP_API int edge_preproc_warp_normalize(edge_pp_context* ctx, const edge_pp_image* frame,
                                            const edge_pp_params* params, void* out) {
    Plan plan;
    int status = edge_pp::make_plan(frame, nullptr, params, &plan);
    if (status != EDGE_PP_OK) return status;
    return run_staged(ctx, plan, &frame, 1, false, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_diff(edge_pp_context* ctx, const edge_pp_image* onset,
                                                 const edge_pp_image* apex,
                                                 const edge_pp_params* params, void* out) {
    if (apex == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "apex image is NULL");
    Plan plan;
    int status = edge_pp::make_plan(onset, apex, params, &plan);
    if (status != EDGE_PP_OK) return status;
    const edge_pp_image* images[2] = {onset, apex};
    return run_staged(ctx, plan, images, 2, true, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_batch(edge_pp_context* ctx,
                                                  const edge_pp_image* frames, int count,
                                                  const edge_pp_params* params, void* out) {
    Plan plan;
    int status = edge_pp::make_plan_batch(frames, count, params, &plan);
    if (status != EDGE_PP_OK) return status;
    const edge_pp_image* images[EDGE_PP_MAX_BATCH];
    for (int i = 0; i < count; ++i) images[i] = &frames[i];
    return run_staged(ctx, plan, images, count, false, params, out);
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

EDGE_PP_API int edge_preproc_warp_normalize_batch_device(const edge_pp_image*, int,
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
