/* CUDA implementation of the edge_preproc C API (libedge_preproc.so).
 *
 * One fused kernel per call: each thread makes one output pixel (warp + bilinear + colour
 * reorder + normalisation + planar store, float or half), reading the frame once; the diff
 * variant reads onset and apex and stores their difference. Host-pointer calls copy only the
 * frame region the crop can touch (source_region), not the whole frame. */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include "edge_preproc.h"
#include "preproc_host.h"
#include "preproc_math.h"

struct edge_pp_context {
    cudaStream_t stream;
    uint8_t* frames;      /* device copy of the frame region(s) */
    size_t frames_bytes;
    void* out;            /* device output tensor */
    size_t out_bytes;
};

namespace {

using edge_pp::Plan;

__global__ void warp_normalize_kernel(Plan plan, const uint8_t* first, const uint8_t* second,
                                      void* out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= plan.out_width || y >= plan.out_height) return;
    float v[3];
    edge_pp::normalized_pixel(plan, first, x, y, v);
    if (second != nullptr) {
        float apex[3];
        edge_pp::normalized_pixel(plan, second, x, y, apex);
        for (int k = 0; k < 3; ++k) v[k] = __fsub_rn(apex[k], v[k]);
    }
    size_t plane = (size_t)plan.out_width * (size_t)plan.out_height;
    size_t at = (size_t)y * (size_t)plan.out_width + (size_t)x;
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

int launch(const Plan& plan, const uint8_t* first, const uint8_t* second, void* out,
           cudaStream_t stream) {
    dim3 block(32, 8);
    dim3 grid((plan.out_width + block.x - 1) / block.x, (plan.out_height + block.y - 1) / block.y);
    warp_normalize_kernel<<<grid, block, 0, stream>>>(plan, first, second, out);
    cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? EDGE_PP_OK : cuda_fail(err, "kernel launch");
}

int ensure(void** buffer, size_t* have, size_t need, const char* what) {
    if (*have >= need) return EDGE_PP_OK;
    if (*buffer != nullptr) cudaFree(*buffer);
    *buffer = nullptr;
    *have = 0;
    cudaError_t err = cudaMalloc(buffer, need);
    if (err != cudaSuccess) return cuda_fail(err, what);
    *have = need;
    return EDGE_PP_OK;
}

int run_host(edge_pp_context* ctx, const edge_pp_image* first, const edge_pp_image* second,
             const edge_pp_params* params, void* out) {
    Plan plan;
    int status = edge_pp::make_plan(first, second, params, &plan);
    if (status != EDGE_PP_OK) return status;
    if (ctx == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "context is NULL");
    if (out == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "output buffer is NULL");
    edge_pp::Region roi = edge_pp::source_region(plan);
    size_t row = (size_t)roi.width * (size_t)plan.channels;
    size_t one = row * (size_t)roi.height;
    size_t frames = second != nullptr ? 2 : 1;
    status = ensure(reinterpret_cast<void**>(&ctx->frames), &ctx->frames_bytes, one * frames,
                    "cudaMalloc(frame region)");
    if (status != EDGE_PP_OK) return status;
    size_t out_bytes = edge_pp::output_bytes(params);
    status = ensure(&ctx->out, &ctx->out_bytes, out_bytes, "cudaMalloc(output)");
    if (status != EDGE_PP_OK) return status;
    const edge_pp_image* images[2] = {first, second};
    for (size_t i = 0; i < frames; ++i) {
        const uint8_t* src = images[i]->data + (size_t)roi.y * images[i]->pitch +
                             (size_t)roi.x * (size_t)plan.channels;
        cudaError_t err = cudaMemcpy2DAsync(ctx->frames + i * one, row, src, images[i]->pitch,
                                            row, (size_t)roi.height, cudaMemcpyHostToDevice,
                                            ctx->stream);
        if (err != cudaSuccess) return cuda_fail(err, "copying the frame to the device");
    }
    plan.roi_x = roi.x;
    plan.roi_y = roi.y;
    plan.pitch = row;
    status = launch(plan, ctx->frames, second != nullptr ? ctx->frames + one : nullptr, ctx->out,
                    ctx->stream);
    if (status != EDGE_PP_OK) return status;
    cudaError_t err = cudaMemcpyAsync(out, ctx->out, out_bytes, cudaMemcpyDeviceToHost, ctx->stream);
    if (err != cudaSuccess) return cuda_fail(err, "copying the output to the host");
    err = cudaStreamSynchronize(ctx->stream);
    return err == cudaSuccess ? EDGE_PP_OK : cuda_fail(err, "cudaStreamSynchronize");
}

int run_device(const edge_pp_image* first, const edge_pp_image* second,
               const edge_pp_params* params, void* out, void* stream) {
    Plan plan;
    int status = edge_pp::make_plan(first, second, params, &plan);
    if (status != EDGE_PP_OK) return status;
    if (out == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "output buffer is NULL");
    return launch(plan, first->data, second != nullptr ? second->data : nullptr, out,
                  static_cast<cudaStream_t>(stream));
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
    edge_pp_context* c = new edge_pp_context{nullptr, nullptr, 0, nullptr, 0};
    cudaError_t err = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
        delete c;
        return cuda_fail(err, "cudaStreamCreate");
    }
    *ctx = c;
    return EDGE_PP_OK;
}

EDGE_PP_API void edge_preproc_destroy(edge_pp_context* ctx) {
    if (ctx == nullptr) return;
    if (ctx->stream != nullptr) cudaStreamSynchronize(ctx->stream);
    if (ctx->frames != nullptr) cudaFree(ctx->frames);
    if (ctx->out != nullptr) cudaFree(ctx->out);
    if (ctx->stream != nullptr) cudaStreamDestroy(ctx->stream);
    delete ctx;
}

EDGE_PP_API int edge_preproc_warp_normalize(edge_pp_context* ctx, const edge_pp_image* frame,
                                            const edge_pp_params* params, void* out) {
    return run_host(ctx, frame, nullptr, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_diff(edge_pp_context* ctx, const edge_pp_image* onset,
                                                 const edge_pp_image* apex,
                                                 const edge_pp_params* params, void* out) {
    if (apex == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "apex image is NULL");
    return run_host(ctx, onset, apex, params, out);
}

EDGE_PP_API int edge_preproc_warp_normalize_device(const edge_pp_image* frame,
                                                   const edge_pp_params* params, void* out,
                                                   void* stream) {
    return run_device(frame, nullptr, params, out, stream);
}

EDGE_PP_API int edge_preproc_warp_normalize_diff_device(const edge_pp_image* onset,
                                                        const edge_pp_image* apex,
                                                        const edge_pp_params* params, void* out,
                                                        void* stream) {
    if (apex == nullptr) return edge_pp::fail(EDGE_PP_ERR_NULL, "apex image is NULL");
    return run_device(onset, apex, params, out, stream);
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
