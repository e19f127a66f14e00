/* CUDA implementation of the edge_preproc C API (libedge_preproc.so).
 *
 * One fused kernel per call: each thread makes one output pixel of one frame (warp + bilinear +
 * colour reorder + normalisation + planar store, float or half), reading the frame once; the
 * diff variant reads onset and apex and stores their difference.
 *
 * Host-pointer calls are built so the copies cost as little as the kernel allows:
 *   - only the frame region the crop can touch is copied (source_region), not the frame;
 *   - it is packed into a pinned staging buffer the context keeps from call to call (pageable
 *     copies would be staged by the driver, synchronously, on every call);
 *   - packing goes in chunks, each sent with cudaMemcpyAsync on the context's stream as soon as
 *     it is packed, so the CPU packs chunk k+1 while the copy engine sends chunk k;
 *   - the result comes back into pinned memory in slabs, each with an event, so the CPU copies
 *     slab k into the caller's array while slab k+1 is in flight;
 *   - a batch (onset and apex of one event) shares one staging pass, one launch, one sync. */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "edge_preproc.h"
#include "preproc_host.h"
#include "preproc_math.h"

namespace {
constexpr int kSlabs = 3; /* result copied back in this many parts */
}

struct edge_pp_context {
    cudaStream_t stream;
    cudaEvent_t slab_done[kSlabs];
    uint8_t* host_in;  /* pinned staging of the frame regions */
    size_t host_in_bytes;
    uint8_t* dev_in;   /* device copy of the same */
    size_t dev_in_bytes;
    uint8_t* host_out; /* pinned copy of the result */
    size_t host_out_bytes;
    uint8_t* dev_out;
    size_t dev_out_bytes;
};

namespace {

using edge_pp::Frame;
using edge_pp::Plan;

/* Kernel argument: the frames of one call, each with its own pitch. */
struct Frames {
    Frame frame[EDGE_PP_MAX_BATCH];
};

/* blockIdx.z picks the frame (batch); with `diff`, frame[1] - frame[0] into one output. */
__global__ void warp_normalize_kernel(Plan plan, Frames frames, int diff, void* out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    int z = blockIdx.z;
    if (x >= plan.out_width || y >= plan.out_height) return;
    float v[3];
    if (diff) {
        float apex[3];
        edge_pp::normalized_pixel(plan, frames.frame[0], x, y, v);
        edge_pp::normalized_pixel(plan, frames.frame[1], x, y, apex);
        for (int k = 0; k < 3; ++k) v[k] = __fsub_rn(apex[k], v[k]);
    } else {
        edge_pp::normalized_pixel(plan, frames.frame[z], x, y, v);
    }
    size_t plane = (size_t)plan.out_width * (size_t)plan.out_height;
    size_t at = (size_t)z * 3 * plane + (size_t)y * (size_t)plan.out_width + (size_t)x;
    if (plan.dtype == EDGE_PP_FLOAT16) {
        __half* o = static_cast<__half*>(out);
        for (int k = 0; k < 3; ++k) o[k * plane + at] = __float2half_rn(v[k]);
    } else {
        float* o = static_cast<float*>(out);
        for (int k = 0; k < 3; ++k) o[k * plane + at] = v[k];
    }
}

int cuda_fail(cudaError_t err, const char* what) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
    cudaGetLastError(); /* clear a sticky launch error so the next call can report its own */
    return edge_pp::fail(err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver
                             ? EDGE_PP_ERR_NO_DEVICE
                             : EDGE_PP_ERR_CUDA,
                         msg);
}

int launch(const Plan& plan, const Frames& frames, int count, bool diff, void* out,
           cudaStream_t stream) {
    dim3 block(32, 8);
    dim3 grid((plan.out_width + block.x - 1) / block.x, (plan.out_height + block.y - 1) / block.y,
              diff ? 1 : count);
    warp_normalize_kernel<<<grid, block, 0, stream>>>(plan, frames, diff ? 1 : 0, out);
    cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? EDGE_PP_OK : cuda_fail(err, "kernel launch");
}

int ensure_device(uint8_t** buffer, size_t* have, size_t need, const char* what) {
    if (*have >= need) return EDGE_PP_OK;
    if (*buffer != nullptr) cudaFree(*buffer);
    *buffer = nullptr;
    *have = 0;
    cudaError_t err = cudaMalloc(reinterpret_cast<void**>(buffer), need);
    if (err != cudaSuccess) return cuda_fail(err, what);
    *have = need;
    return EDGE_PP_OK;
}

int ensure_pinned(uint8_t** buffer, size_t* have, size_t need, const char* what) {
    if (*have >= need) return EDGE_PP_OK;
    if (*buffer != nullptr) cudaFreeHost(*buffer);
    *buffer = nullptr;
    *have = 0;
    cudaError_t err = cudaHostAlloc(reinterpret_cast<void**>(buffer), need, cudaHostAllocDefault);
    if (err != cudaSuccess) return cuda_fail(err, what);
    *have = need;
    return EDGE_PP_OK;
}

/* Waits for whatever this call queued before reporting `status`: the pinned buffers must not
 * be reused by the next call while a copy still reads them. */
int drain(edge_pp_context* ctx, int status) {
    cudaStreamSynchronize(ctx->stream);
    return status;
}

int run_host(edge_pp_context* ctx, const Plan& plan, const edge_pp_image* const* images,
             int count, bool diff, const edge_pp_params* params, void* out) {
    if (ctx == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "context is NULL");
    if (out == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "output buffer is NULL");
    edge_pp::Staging staging = edge_pp::staging_layout(plan, count);
    size_t out_bytes = edge_pp::output_bytes(params) * (diff ? 1 : (size_t)count);
    int status = ensure_pinned(&ctx->host_in, &ctx->host_in_bytes, staging.total_bytes,
                               "cudaHostAlloc(frame staging)");
    if (status == EDGE_PP_OK) {
        status = ensure_device(&ctx->dev_in, &ctx->dev_in_bytes, staging.total_bytes,
                               "cudaMalloc(frame region)");
    }
    if (status == EDGE_PP_OK) {
        status = ensure_pinned(&ctx->host_out, &ctx->host_out_bytes, out_bytes,
                               "cudaHostAlloc(output staging)");
    }
    if (status == EDGE_PP_OK) {
        status = ensure_device(&ctx->dev_out, &ctx->dev_out_bytes, out_bytes, "cudaMalloc(output)");
    }
    if (status != EDGE_PP_OK) return status;

    for (int i = 0; i < count; ++i) {
        for (int row = 0; row < staging.region.height; row += staging.chunk_rows) {
            int end = row + staging.chunk_rows;
            if (end > staging.region.height) end = staging.region.height;
            edge_pp::stage_rows(staging, *images[i], i, row, end, ctx->host_in);
            size_t at = (size_t)i * staging.slot_bytes + (size_t)row * staging.row_bytes;
            size_t bytes = (size_t)(end - row) * staging.row_bytes;
            cudaError_t err = cudaMemcpyAsync(ctx->dev_in + at, ctx->host_in + at, bytes,
                                              cudaMemcpyHostToDevice, ctx->stream);
            if (err != cudaSuccess) {
                return drain(ctx, cuda_fail(err, "copying the frame region to the device"));
            }
        }
    }
    Frames frames;
    memset(&frames, 0, sizeof frames);
    for (int i = 0; i < count; ++i) frames.frame[i] = edge_pp::staged_frame(staging, ctx->dev_in, i);
    status = launch(edge_pp::staged_plan(plan, staging), frames, count, diff, ctx->dev_out,
                    ctx->stream);
    if (status != EDGE_PP_OK) return drain(ctx, status);

    size_t slab = (out_bytes + kSlabs - 1) / kSlabs;
    for (int k = 0; k < kSlabs; ++k) {
        size_t at = (size_t)k * slab;
        if (at >= out_bytes) break;
        size_t bytes = at + slab > out_bytes ? out_bytes - at : slab;
        cudaError_t err = cudaMemcpyAsync(ctx->host_out + at, ctx->dev_out + at, bytes,
                                          cudaMemcpyDeviceToHost, ctx->stream);
        if (err == cudaSuccess) err = cudaEventRecord(ctx->slab_done[k], ctx->stream);
        if (err != cudaSuccess) return drain(ctx, cuda_fail(err, "copying the output to the host"));
    }
    for (int k = 0; k < kSlabs; ++k) {
        size_t at = (size_t)k * slab;
        if (at >= out_bytes) break;
        size_t bytes = at + slab > out_bytes ? out_bytes - at : slab;
        cudaError_t err = cudaEventSynchronize(ctx->slab_done[k]);
        if (err != cudaSuccess) return drain(ctx, cuda_fail(err, "waiting for the output"));
        memcpy(static_cast<uint8_t*>(out) + at, ctx->host_out + at, bytes);
    }
    return EDGE_PP_OK;
}

int run_device(const Plan& plan, const edge_pp_image* const* images, int count, bool diff,
               void* out, void* stream) {
    if (out == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "output buffer is NULL");
    Frames frames;
    memset(&frames, 0, sizeof frames);
    for (int i = 0; i < count; ++i) frames.frame[i] = edge_pp::frame_in_place(*images[i]);
    return launch(plan, frames, count, diff, out, static_cast<cudaStream_t>(stream));
}

}  // namespace

extern "C" {

EDGE_PP_API const char* edge_preproc_backend(void) { return "cuda"; }

EDGE_PP_API int edge_preproc_device_count(void) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        cuda_fail(err, "cudaGetDeviceCount");
        return 0;
    }
    return count;
}

EDGE_PP_API int edge_preproc_create(edge_pp_context** ctx) {
    edge_pp::clear_error();
    if (ctx == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "ctx is NULL");
    *ctx = nullptr;
    if (edge_preproc_device_count() < 1) {
        if (edge_preproc_last_error()[0] == '\0') {
            edge_pp::fail(EDGE_PP_ERR_NO_DEVICE, "no CUDA device is visible");
        }
        return EDGE_PP_ERR_NO_DEVICE;
    }
    edge_pp_context* c = new edge_pp_context();
    memset(c, 0, sizeof *c);
    cudaError_t err = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    for (int k = 0; k < kSlabs && err == cudaSuccess; ++k) {
        err = cudaEventCreateWithFlags(&c->slab_done[k], cudaEventDisableTiming);
    }
    if (err != cudaSuccess) {
        int status = cuda_fail(err, "creating the context's stream and events");
        edge_preproc_destroy(c);
        return status;
    }
    *ctx = c;
    return EDGE_PP_OK;
}

EDGE_PP_API void edge_preproc_destroy(edge_pp_context* ctx) {
    if (ctx == nullptr) return;
    if (ctx->stream != nullptr) cudaStreamSynchronize(ctx->stream);
    for (int k = 0; k < kSlabs; ++k) {
        if (ctx->slab_done[k] != nullptr) cudaEventDestroy(ctx->slab_done[k]);
    }
    if (ctx->host_in != nullptr) cudaFreeHost(ctx->host_in);
    if (ctx->host_out != nullptr) cudaFreeHost(ctx->host_out);
    if (ctx->dev_in != nullptr) cudaFree(ctx->dev_in);
    if (ctx->dev_out != nullptr) cudaFree(ctx->dev_out);
    if (ctx->stream != nullptr) cudaStreamDestroy(ctx->stream);
    delete ctx;
}

EDGE_PP_API int edge_preproc_warp_normalize(edge_pp_context* ctx, const edge_pp_image* frame,
                                            const edge_pp_params* params, void* out) {
    Plan plan;
    int status = edge_pp::make_plan(frame, nullptr, params, &plan);
    if (status != EDGE_PP_OK) return status;
    return run_host(ctx, plan, &frame, 1, false, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_diff(edge_pp_context* ctx, const edge_pp_image* onset,
                                                 const edge_pp_image* apex,
                                                 const edge_pp_params* params, void* out) {
    if (apex == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "apex image is NULL");
    Plan plan;
    int status = edge_pp::make_plan(onset, apex, params, &plan);
    if (status != EDGE_PP_OK) return status;
    const edge_pp_image* images[2] = {onset, apex};
    return run_host(ctx, plan, images, 2, true, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_batch(edge_pp_context* ctx,
                                                  const edge_pp_image* frames, int count,
                                                  const edge_pp_params* params, void* out) {
    Plan plan;
    int status = edge_pp::make_plan_batch(frames, count, params, &plan);
    if (status != EDGE_PP_OK) return status;
    const edge_pp_image* images[EDGE_PP_MAX_BATCH];
    for (int i = 0; i < count; ++i) images[i] = &frames[i];
    return run_host(ctx, plan, images, count, false, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_device(const edge_pp_image* frame,
                                                   const edge_pp_params* params, void* out,
                                                   void* stream) {
    Plan plan;
    int status = edge_pp::make_plan(frame, nullptr, params, &plan);
    if (status != EDGE_PP_OK) return status;
    return run_device(plan, &frame, 1, false, out, stream);
}

EDGE_PP_API int edge_preproc_warp_normalize_diff_device(const edge_pp_image* onset,
                                                        const edge_pp_image* apex,
                                                        const edge_pp_params* params, void* out,
                                                        void* stream) {
    if (apex == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "apex image is NULL");
    Plan plan;
    int status = edge_pp::make_plan(onset, apex, params, &plan);
    if (status != EDGE_PP_OK) return status;
    const edge_pp_image* images[2] = {onset, apex};
    return run_device(plan, images, 2, true, out, stream);
}

EDGE_PP_API int edge_preproc_warp_normalize_batch_device(const edge_pp_image* frames, int count,
                                                         const edge_pp_params* params, void* out,
                                                         void* stream) {
    Plan plan;
    int status = edge_pp::make_plan_batch(frames, count, params, &plan);
    if (status != EDGE_PP_OK) return status;
    const edge_pp_image* images[EDGE_PP_MAX_BATCH];
    for (int i = 0; i < count; ++i) images[i] = &frames[i];
    return run_device(plan, images, count, false, out, stream);
}

EDGE_PP_API int edge_preproc_device_alloc(size_t bytes, void** ptr) {
    edge_pp::clear_error();
    if (ptr == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "ptr is NULL");
    cudaError_t err = cudaMalloc(ptr, bytes);
    return err == cudaSuccess ? EDGE_PP_OK : cuda_fail(err, "cudaMalloc");
}

EDGE_PP_API int edge_preproc_device_free(void* ptr) {
    cudaError_t err = cudaFree(ptr);
    return err == cudaSuccess ? EDGE_PP_OK : cuda_fail(err, "cudaFree");
}

EDGE_PP_API int edge_preproc_copy_to_device(void* dst, const void* src, size_t bytes) {
    cudaError_t err = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    return err == cudaSuccess ? EDGE_PP_OK : cuda_fail(err, "cudaMemcpy host->device");
}

EDGE_PP_API int edge_preproc_copy_to_host(void* dst, const void* src, size_t bytes) {
    cudaError_t err = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    return err == cudaSuccess ? EDGE_PP_OK : cuda_fail(err, "cudaMemcpy device->host");
}

EDGE_PP_API int edge_preproc_synchronize(void) {
    cudaError_t err = cudaDeviceSynchronize();
    return err == cudaSuccess ? EDGE_PP_OK : cuda_fail(err, "cudaDeviceSynchronize");
}

}  // extern "C"
