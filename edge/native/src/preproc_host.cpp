/* Argument checks, Plan construction and error reporting for both edge_preproc libraries. */
#include "preproc_host.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <string>

namespace edge_pp {

namespace {
thread_local std::string last_error;
}

int fail(int status, const char* message) {
    last_error = message;
    return status;
}

void clear_error() { last_error.clear(); }

int channels_of(int color) {
    switch (color) {
        case EDGE_PP_GRAY: return 1;
        case EDGE_PP_RGB:
        case EDGE_PP_BGR: return 3;
        case EDGE_PP_RGBA:
        case EDGE_PP_BGRA: return 4;
        default: return 0;
    }
}

bool invert_affine(const double m[6], double inv[6]) {
    for (int i = 0; i < 6; ++i) {
        if (!isfinite(m[i])) return false;
    }
    double det = m[0] * m[4] - m[1] * m[3];
    if (!isfinite(det) || fabs(det) < 1e-12) return false;
    double d = 1.0 / det;
    double a11 = m[4] * d, a22 = m[0] * d, a12 = -m[1] * d, a21 = -m[3] * d;
    inv[0] = a11;
    inv[1] = a12;
    inv[2] = -a11 * m[2] - a12 * m[5];
    inv[3] = a21;
    inv[4] = a22;
    inv[5] = -a21 * m[2] - a22 * m[5];
    for (int i = 0; i < 6; ++i) {
        if (!isfinite(inv[i])) return false;
    }
    return true;
}

int check_image(const edge_pp_image* image, const char* what) {
    char msg[256];
    if (image == nullptr || image->data == nullptr) {
        snprintf(msg, sizeof msg, "%s: image or its data pointer is NULL", what);
        return fail(EDGE_PP_ERR_NULL, msg);
    }
    int channels = channels_of(image->color);
    if (channels == 0) {
        snprintf(msg, sizeof msg, "%s: unknown colour order %d (GRAY=0 RGB=1 BGR=2 RGBA=3 BGRA=4)",
                 what, (int)image->color);
        return fail(EDGE_PP_ERR_COLOR, msg);
    }
    if (image->width < 1 || image->height < 1 || image->width > kMaxSide ||
        image->height > kMaxSide) {
        snprintf(msg, sizeof msg, "%s: size %dx%d is outside 1..%d", what, (int)image->width,
                 (int)image->height, kMaxSide);
        return fail(EDGE_PP_ERR_SIZE, msg);
    }
    size_t row = (size_t)image->width * (size_t)channels;
    if (image->pitch < row) {
        snprintf(msg, sizeof msg, "%s: pitch %zu bytes is less than width*channels = %zu", what,
                 image->pitch, row);
        return fail(EDGE_PP_ERR_PITCH, msg);
    }
    return EDGE_PP_OK;
}

int check_params(const edge_pp_params* params) {
    char msg[256];
    if (params == nullptr) return fail(EDGE_PP_ERR_NULL, "params is NULL");
    if (params->out_width < 1 || params->out_height < 1 || params->out_width > kMaxSide ||
        params->out_height > kMaxSide) {
        snprintf(msg, sizeof msg, "output size %dx%d is outside 1..%d", (int)params->out_width,
                 (int)params->out_height, kMaxSide);
        return fail(EDGE_PP_ERR_SIZE, msg);
    }
    if (params->color_out != EDGE_PP_RGB && params->color_out != EDGE_PP_BGR) {
        snprintf(msg, sizeof msg, "output colour order %d must be RGB (1) or BGR (2)",
                 (int)params->color_out);
        return fail(EDGE_PP_ERR_COLOR, msg);
    }
    if (params->dtype != EDGE_PP_FLOAT32 && params->dtype != EDGE_PP_FLOAT16) {
        snprintf(msg, sizeof msg, "dtype %d must be FLOAT32 (0) or FLOAT16 (1)", (int)params->dtype);
        return fail(EDGE_PP_ERR_ARG, msg);
    }
    if (params->border != EDGE_PP_BORDER_REPLICATE && params->border != EDGE_PP_BORDER_CONSTANT) {
        snprintf(msg, sizeof msg, "border %d must be REPLICATE (0) or CONSTANT (1)",
                 (int)params->border);
        return fail(EDGE_PP_ERR_ARG, msg);
    }
    if (params->interp != EDGE_PP_INTERP_FIXED && params->interp != EDGE_PP_INTERP_FLOAT) {
        snprintf(msg, sizeof msg, "interpolation %d must be FIXED (0) or FLOAT (1)",
                 (int)params->interp);
        return fail(EDGE_PP_ERR_ARG, msg);
    }
    if (!isfinite(params->scale) || params->scale == 0.0f) {
        snprintf(msg, sizeof msg, "scale %g must be finite and non-zero", (double)params->scale);
        return fail(EDGE_PP_ERR_NORM, msg);
    }
    for (int k = 0; k < 3; ++k) {
        if (!isfinite(params->std[k]) || params->std[k] == 0.0f) {
            snprintf(msg, sizeof msg, "std[%d] = %g must be finite and non-zero", k,
                     (double)params->std[k]);
            return fail(EDGE_PP_ERR_NORM, msg);
        }
        if (!isfinite(params->mean[k])) {
            snprintf(msg, sizeof msg, "mean[%d] = %g is not finite", k, (double)params->mean[k]);
            return fail(EDGE_PP_ERR_NORM, msg);
        }
    }
    double inv[6];
    if (!invert_affine(params->matrix, inv)) {
        const double* m = params->matrix;
        snprintf(msg, sizeof msg,
                 "matrix [[%g %g %g] [%g %g %g]] is not finite or not invertible", m[0], m[1], m[2],
                 m[3], m[4], m[5]);
        return fail(EDGE_PP_ERR_MATRIX, msg);
    }
    return EDGE_PP_OK;
}

namespace {

/* Checks every frame against the first one; `names` labels them in messages. */
int check_frames(const edge_pp_image* const* images, const char* const* names, int count) {
    char msg[256];
    for (int i = 0; i < count; ++i) {
        int status = check_image(images[i], names[i]);
        if (status != EDGE_PP_OK) return status;
        if (i == 0) continue;
        const edge_pp_image* a = images[0];
        const edge_pp_image* b = images[i];
        if (b->width != a->width || b->height != a->height || b->color != a->color) {
            snprintf(msg, sizeof msg, "%s is %dx%d colour %d but %s is %dx%d colour %d",
                     names[0], (int)a->width, (int)a->height, (int)a->color, names[i],
                     (int)b->width, (int)b->height, (int)b->color);
            return fail(EDGE_PP_ERR_SIZE, msg);
        }
    }
    return EDGE_PP_OK;
}

int plan_from(const edge_pp_image* frame, const edge_pp_params* params, Plan* plan);

}  // namespace

int make_plan(const edge_pp_image* frame, const edge_pp_image* second,
              const edge_pp_params* params, Plan* plan) {
    clear_error();
    if (plan == nullptr) return fail(EDGE_PP_ERR_NULL, "plan is NULL");
    const edge_pp_image* images[2] = {frame, second};
    const char* one[1] = {"frame"};
    const char* pair[2] = {"onset", "apex"};
    int status = check_frames(images, second != nullptr ? pair : one, second != nullptr ? 2 : 1);
    if (status != EDGE_PP_OK) return status;
    return plan_from(frame, params, plan);
}

int make_plan_batch(const edge_pp_image* frames, int count, const edge_pp_params* params,
                    Plan* plan) {
    clear_error();
    char msg[256];
    if (plan == nullptr) return fail(EDGE_PP_ERR_NULL, "plan is NULL");
    if (frames == nullptr) return fail(EDGE_PP_ERR_NULL, "frames is NULL");
    if (count < 1 || count > EDGE_PP_MAX_BATCH) {
        snprintf(msg, sizeof msg, "batch of %d frames is outside 1..%d", count, EDGE_PP_MAX_BATCH);
        return fail(EDGE_PP_ERR_SIZE, msg);
    }
    const edge_pp_image* images[EDGE_PP_MAX_BATCH];
    char labels[EDGE_PP_MAX_BATCH][16];
    const char* names[EDGE_PP_MAX_BATCH];
    for (int i = 0; i < count; ++i) {
        images[i] = &frames[i];
        snprintf(labels[i], sizeof labels[i], "frame %d", i);
        names[i] = labels[i];
    }
    int status = check_frames(images, names, count);
    if (status != EDGE_PP_OK) return status;
    return plan_from(&frames[0], params, plan);
}

Frame frame_in_place(const edge_pp_image& image) {
    Frame f = {image.data, image.pitch};
    return f;
}

namespace {

int plan_from(const edge_pp_image* frame, const edge_pp_params* params, Plan* plan) {
    int status = check_params(params);
    if (status != EDGE_PP_OK) return status;

    Plan p;
    memset(&p, 0, sizeof p);
    invert_affine(params->matrix, p.inv);
    for (int i = 0; i < 6; ++i) p.inv_f[i] = (float)p.inv[i];
    float scale = params->scale;
    for (int k = 0; k < 3; ++k) {
        /* normalize_frame: mean32 / scale32 and scale32 / std32, all in float32 */
        p.mean[k] = params->mean[k] / scale;
        p.inv_std[k] = scale / params->std[k];
    }
    int in_color = frame->color;
    bool in_bgr = in_color == EDGE_PP_BGR || in_color == EDGE_PP_BGRA;
    bool out_bgr = params->color_out == EDGE_PP_BGR;
    for (int k = 0; k < 3; ++k) {
        if (in_color == EDGE_PP_GRAY) {
            p.src_channel[k] = 0;
        } else {
            p.src_channel[k] = in_bgr == out_bgr ? k : 2 - k;
        }
    }
    p.channels = channels_of(in_color);
    p.src_width = frame->width;
    p.src_height = frame->height;
    p.roi_x = 0;
    p.roi_y = 0;
    p.out_width = params->out_width;
    p.out_height = params->out_height;
    p.border = params->border;
    p.interp = params->interp;
    p.dtype = params->dtype;
    *plan = p;
    return EDGE_PP_OK;
}

}  // namespace

Region source_region(const Plan& plan) {
    double xs[4] = {0.0, (double)(plan.out_width - 1), 0.0, (double)(plan.out_width - 1)};
    double ys[4] = {0.0, 0.0, (double)(plan.out_height - 1), (double)(plan.out_height - 1)};
    double lo_x = 1e300, hi_x = -1e300, lo_y = 1e300, hi_y = -1e300;
    for (int i = 0; i < 4; ++i) {
        double sx = plan.inv[0] * xs[i] + plan.inv[1] * ys[i] + plan.inv[2];
        double sy = plan.inv[3] * xs[i] + plan.inv[4] * ys[i] + plan.inv[5];
        lo_x = std::min(lo_x, sx);
        hi_x = std::max(hi_x, sx);
        lo_y = std::min(lo_y, sy);
        hi_y = std::max(hi_y, sy);
    }
    /* floor(s) and floor(s) + 1 are read; 2 more pixels cover coordinate rounding. */
    double limit = 1e9;
    int x0 = (int)std::max(-limit, std::min(limit, floor(lo_x) - 2.0));
    int x1 = (int)std::max(-limit, std::min(limit, floor(hi_x) + 3.0));
    int y0 = (int)std::max(-limit, std::min(limit, floor(lo_y) - 2.0));
    int y1 = (int)std::max(-limit, std::min(limit, floor(hi_y) + 3.0));
    x0 = std::max(0, std::min(x0, plan.src_width - 1));
    y0 = std::max(0, std::min(y0, plan.src_height - 1));
    x1 = std::max(x0 + 1, std::min(x1, plan.src_width));
    y1 = std::max(y0 + 1, std::min(y1, plan.src_height));
    Region r = {x0, y0, x1 - x0, y1 - y0};
    return r;
}

size_t output_bytes(const edge_pp_params* params) {
    size_t elem = params->dtype == EDGE_PP_FLOAT16 ? 2 : 4;
    return 3 * (size_t)params->out_width * (size_t)params->out_height * elem;
}

Staging staging_layout(const Plan& plan, int frames) {
    Staging s;
    s.region = source_region(plan);
    s.channels = plan.channels;
    s.frames = frames;
    s.row_bytes = (size_t)s.region.width * (size_t)plan.channels;
    size_t slot = s.row_bytes * (size_t)s.region.height;
    s.slot_bytes = (slot + 255) / 256 * 256;
    s.total_bytes = s.slot_bytes * (size_t)frames;
    /* ~256 KiB per chunk: big enough that a copy's fixed cost is small, small enough that
     * packing the next chunk on the CPU overlaps the transfer of this one. */
    size_t rows = ((size_t)256 << 10) / (s.row_bytes > 0 ? s.row_bytes : 1);
    s.chunk_rows = (int)std::max<size_t>(1, std::min<size_t>(rows, (size_t)s.region.height));
    return s;
}

void stage_rows(const Staging& staging, const edge_pp_image& image, int slot, int row_begin,
                int row_end, uint8_t* base) {
    const Region& r = staging.region;
    uint8_t* dst = base + (size_t)slot * staging.slot_bytes;
    const uint8_t* first = image.data + (size_t)r.x * (size_t)staging.channels;
    /* Short rows far apart defeat the hardware prefetcher: every row starts with cache misses.
     * Asking for the row kPrefetchRows ahead makes the copy bandwidth-bound (1.5x measured on a
     * hot 1080p frame; benchmarks/copy_probe.cu times it on a GPU machine). */
    const int kPrefetchRows = 4;
    for (int y = row_begin; y < row_end; ++y) {
        if (y + kPrefetchRows < row_end) {
            const uint8_t* ahead = first + (size_t)(r.y + y + kPrefetchRows) * image.pitch;
            for (size_t at = 0; at < staging.row_bytes; at += 64) __builtin_prefetch(ahead + at);
        }
        memcpy(dst + (size_t)y * staging.row_bytes, first + (size_t)(r.y + y) * image.pitch,
               staging.row_bytes);
    }
}

Plan staged_plan(const Plan& plan, const Staging& staging) {
    Plan p = plan;
    p.roi_x = staging.region.x;
    p.roi_y = staging.region.y;
    return p;
}

Frame staged_frame(const Staging& staging, const uint8_t* base, int slot) {
    Frame f = {base + (size_t)slot * staging.slot_bytes, staging.row_bytes};
    return f;
}

}  // namespace edge_pp

extern "C" {

EDGE_PP_API int edge_preproc_abi_version(void) { return EDGE_PREPROC_ABI_VERSION; }

EDGE_PP_API const char* edge_preproc_last_error(void) { return edge_pp::last_error.c_str(); }

EDGE_PP_API const char* edge_preproc_status_string(int status) {
    switch (status) {
        case EDGE_PP_OK: return "ok";
        case EDGE_PP_ERR_NULL: return "null pointer";
        case EDGE_PP_ERR_SIZE: return "bad size";
        case EDGE_PP_ERR_PITCH: return "pitch smaller than a row";
        case EDGE_PP_ERR_COLOR: return "unknown colour order";
        case EDGE_PP_ERR_MATRIX: return "matrix not invertible";
        case EDGE_PP_ERR_NORM: return "bad normalisation (std or scale zero, or not finite)";
        case EDGE_PP_ERR_ARG: return "bad argument";
        case EDGE_PP_ERR_UNSUPPORTED: return "not supported by this build";
        case EDGE_PP_ERR_NO_DEVICE: return "no CUDA device";
        case EDGE_PP_ERR_CUDA: return "CUDA error";
        default: return "unknown status";
    }
}

EDGE_PP_API int edge_preproc_validate(const edge_pp_image* frame, const edge_pp_image* second,
                                      const edge_pp_params* params) {
    edge_pp::Plan plan;
    return edge_pp::make_plan(frame, second, params, &plan);
}

}  // extern "C"
