/*
 * edge_preproc: fused face-crop preprocessing for mer-edge.
 *
 * One call turns a uint8 camera frame into the model's input tensor: affine warp with bilinear
 * interpolation (the aligner's 2x3 matrix), colour reorder, scale and per-channel
 * normalisation, HWC -> planar CHW, float32 or float16. A second entry point writes
 * normalise(apex) - normalise(onset), the motion input MMNet computes first; a third does a
 * batch of frames that share one alignment (onset and apex of an event, or a clip) in one call,
 * so the host-pointer path pays its copies and its synchronisation once per event.
 *
 * Two libraries implement this API from the same per-pixel code (src/preproc_math.h):
 *   libedge_preproc.so      CUDA (built when CMake finds nvcc)
 *   libedge_preproc_cpu.so  plain C++ (always built; reference and test double)
 *
 * Matrix convention: `matrix` maps SOURCE pixels to OUTPUT pixels, row-major 2x3, exactly the
 * matrix cv2.warpAffine takes without WARP_INVERSE_MAP (and the one edge.align produces).
 * Pixel centres sit at integer coordinates, as in OpenCV.
 *
 * Interpolation reproduces OpenCV bit for bit (uint8 result of the warp, then normalisation):
 *   EDGE_PP_INTERP_FIXED  OpenCV <= 4.10 (JetPack's 4.5/4.8): 1/32-pixel fixed point
 *   EDGE_PP_INTERP_FLOAT  OpenCV >= 4.11 / 5.x: float32 coordinates and FMA interpolation
 *
 * Every function returns an edge_pp_status; edge_preproc_last_error() gives a one-line message
 * for the calling thread's last failure.
 */
#ifndef EDGE_PREPROC_H
#define EDGE_PREPROC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EDGE_PP_API __declspec(dllexport)
#else
#define EDGE_PP_API __attribute__((visibility("default")))
#endif

/* Bumped whenever a struct layout or a signature changes (the Python binding checks it). */
#define EDGE_PREPROC_ABI_VERSION 2

/* Most frames one batch call takes. */
#define EDGE_PP_MAX_BATCH 32

typedef enum {
    EDGE_PP_OK = 0,
    EDGE_PP_ERR_NULL = 1,        /* a required pointer is NULL */
    EDGE_PP_ERR_SIZE = 2,        /* image or output size out of range, or onset/apex differ */
    EDGE_PP_ERR_PITCH = 3,       /* pitch < width * channels */
    EDGE_PP_ERR_COLOR = 4,       /* unknown colour order (input or output) */
    EDGE_PP_ERR_MATRIX = 5,      /* matrix not finite or not invertible */
    EDGE_PP_ERR_NORM = 6,        /* std == 0, scale == 0, or a non-finite mean/std/scale */
    EDGE_PP_ERR_ARG = 7,         /* unknown dtype, border or interpolation mode */
    EDGE_PP_ERR_UNSUPPORTED = 8, /* not available in this build (device calls in the CPU one) */
    EDGE_PP_ERR_NO_DEVICE = 9,   /* no usable CUDA device */
    EDGE_PP_ERR_CUDA = 10        /* a CUDA call failed; see edge_preproc_last_error() */
} edge_pp_status;

typedef enum {
    EDGE_PP_GRAY = 0, /* 1 channel; replicated to the three output planes */
    EDGE_PP_RGB = 1,
    EDGE_PP_BGR = 2,
    EDGE_PP_RGBA = 3, /* 4 channels, alpha ignored */
    EDGE_PP_BGRA = 4
} edge_pp_color;

typedef enum { EDGE_PP_FLOAT32 = 0, EDGE_PP_FLOAT16 = 1 } edge_pp_dtype;

typedef enum {
    EDGE_PP_BORDER_REPLICATE = 0, /* what edge.align uses: edges add no false motion */
    EDGE_PP_BORDER_CONSTANT = 1   /* outside pixels are 0 */
} edge_pp_border;

typedef enum { EDGE_PP_INTERP_FIXED = 0, EDGE_PP_INTERP_FLOAT = 1 } edge_pp_interp;

/* A uint8 interleaved frame. `pitch` is the byte distance between rows (>= width*channels). */
typedef struct {
    const uint8_t* data;
    int32_t width;
    int32_t height;
    int32_t color; /* edge_pp_color */
    int32_t reserved;
    size_t pitch;
} edge_pp_image;

typedef struct {
    double matrix[6]; /* source -> output pixels, row-major 2x3 (cv2.warpAffine convention) */
    int32_t out_width;
    int32_t out_height;
    int32_t color_out; /* EDGE_PP_RGB or EDGE_PP_BGR: order of the three output planes */
    int32_t dtype;     /* edge_pp_dtype */
    int32_t border;    /* edge_pp_border */
    int32_t interp;    /* edge_pp_interp */
    float mean[3];     /* per output plane, in units of pixel*scale (ImageNet: 0.485 ...) */
    float std[3];
    float scale;       /* pixel multiplier before normalisation, usually 1/255 */
} edge_pp_params;

/* out[c][y][x] = (warp(frame)[y][x][c'] * scale - mean[c]) / std[c], computed as OpenCV +
 * edge.preprocess.normalize_frame do: (v - float(mean/scale)) * float(scale/std). */

typedef struct edge_pp_context edge_pp_context;

EDGE_PP_API int edge_preproc_abi_version(void);
/* "cuda" or "cpu". */
EDGE_PP_API const char* edge_preproc_backend(void);
/* Number of usable CUDA devices (0 in the CPU build or without a driver). */
EDGE_PP_API int edge_preproc_device_count(void);
EDGE_PP_API const char* edge_preproc_status_string(int status);
/* Message of the calling thread's last failure ("" if none). */
EDGE_PP_API const char* edge_preproc_last_error(void);

/* Check arguments without running anything (host code, same checks as the run calls). */
EDGE_PP_API int edge_preproc_validate(const edge_pp_image* frame, const edge_pp_image* second,
                                      const edge_pp_params* params);

/* A context owns the CUDA stream, the pinned staging buffers and the device buffers the
 * host-pointer calls reuse from call to call (they grow, never shrink). One context per thread. */
EDGE_PP_API int edge_preproc_create(edge_pp_context** ctx);
EDGE_PP_API void edge_preproc_destroy(edge_pp_context* ctx);

/* Host pointers in and out: packs the frame region the crop needs into pinned memory, copies it
 * to the device on the context's stream (chunked, so packing and transfer overlap), runs the
 * kernel, copies the [3, out_height, out_width] tensor back and waits for it. Frames may be
 * strided views: each image's own pitch is used. */
EDGE_PP_API int edge_preproc_warp_normalize(edge_pp_context* ctx, const edge_pp_image* frame,
                                            const edge_pp_params* params, void* out);
EDGE_PP_API int edge_preproc_warp_normalize_diff(edge_pp_context* ctx, const edge_pp_image* onset,
                                                 const edge_pp_image* apex,
                                                 const edge_pp_params* params, void* out);

/* `count` frames (1..EDGE_PP_MAX_BATCH) of one size and colour order, one matrix: writes
 * [count, 3, out_height, out_width] to `out`. Host pointers, as above. */
EDGE_PP_API int edge_preproc_warp_normalize_batch(edge_pp_context* ctx,
                                                  const edge_pp_image* frames, int count,
                                                  const edge_pp_params* params, void* out);

/* Device pointers in and out (frame.data and out on the GPU), asynchronous on `stream`
 * (a cudaStream_t; NULL = the legacy default stream). CUDA build only. */
EDGE_PP_API int edge_preproc_warp_normalize_device(const edge_pp_image* frame,
                                                   const edge_pp_params* params, void* out,
                                                   void* stream);
EDGE_PP_API int edge_preproc_warp_normalize_diff_device(const edge_pp_image* onset,
                                                        const edge_pp_image* apex,
                                                        const edge_pp_params* params, void* out,
                                                        void* stream);
EDGE_PP_API int edge_preproc_warp_normalize_batch_device(const edge_pp_image* frames, int count,
                                                         const edge_pp_params* params, void* out,
                                                         void* stream);

/* Small CUDA helpers so callers without a CUDA binding (ctypes, tests, benchmarks) can use the
 * device-pointer calls. CUDA build only. */
EDGE_PP_API int edge_preproc_device_alloc(size_t bytes, void** ptr);
EDGE_PP_API int edge_preproc_device_free(void* ptr);
EDGE_PP_API int edge_preproc_copy_to_device(void* dst, const void* src, size_t bytes);
EDGE_PP_API int edge_preproc_copy_to_host(void* dst, const void* src, size_t bytes);
EDGE_PP_API int edge_preproc_synchronize(void);

#ifdef __cplusplus
}
#endif

#endif /* EDGE_PREPROC_H */
