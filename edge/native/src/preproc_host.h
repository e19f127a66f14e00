/* Host-side helpers shared by the CUDA and the CPU library: argument checks, matrix inversion,
 * the per-call Plan, the source region a crop needs, and the per-thread error message. No CUDA
 * here, so ctest exercises all of it on any machine. */
#ifndef EDGE_PREPROC_HOST_H
#define EDGE_PREPROC_HOST_H

#include "edge_preproc.h"
#include "preproc_math.h"

namespace edge_pp {

/* Source pixels a crop reads, clamped to the frame: [x, x + width) x [y, y + height). */
struct Region {
    int x;
    int y;
    int width;
    int height;
};

constexpr int kMaxSide = 32767; /* OpenCV's warp keeps coordinates in shorts */

/* Where the host-pointer calls put each frame's source region: one packed buffer (pinned in the
 * CUDA build), frame slot i at i * slot_bytes, rows of row_bytes with no padding. The copy goes
 * in chunks of chunk_rows rows so the CUDA build can send one chunk while it packs the next. */
struct Staging {
    Region region;
    int channels;
    int frames;
    size_t row_bytes;   /* region.width * channels: the staged pitch */
    size_t slot_bytes;  /* row_bytes * region.height, rounded up to 256 (copy alignment) */
    size_t total_bytes; /* slot_bytes * frames */
    int chunk_rows;     /* rows per copy chunk (>= 1) */
};

int channels_of(int color);
/* Inverts a 2x3 affine as cv2.invertAffineTransform does; false when not invertible. */
bool invert_affine(const double m[6], double inv[6]);
/* Records `message` for edge_preproc_last_error() and returns `status`. */
int fail(int status, const char* message);
void clear_error();
int check_image(const edge_pp_image* image, const char* what);
int check_params(const edge_pp_params* params);
/* Full check of one call (second may be NULL) and the Plan for `frame`. */
int make_plan(const edge_pp_image* frame, const edge_pp_image* second,
              const edge_pp_params* params, Plan* plan);
/* Full check of a batch call: 1..EDGE_PP_MAX_BATCH frames of one size and colour order. */
int make_plan_batch(const edge_pp_image* frames, int count, const edge_pp_params* params,
                    Plan* plan);
/* The frame as it lies in the caller's memory (device-pointer calls read it in place). */
Frame frame_in_place(const edge_pp_image& image);
/* Bounding box of every source pixel the warp can touch, with a 2-pixel guard band. */
Region source_region(const Plan& plan);
size_t output_bytes(const edge_pp_params* params);

/* Staging layout for `frames` frames read through `plan` (region from source_region). */
Staging staging_layout(const Plan& plan, int frames);
/* Packs rows [row_begin, row_end) of `image`'s region into slot `slot` of `base`. */
void stage_rows(const Staging& staging, const edge_pp_image& image, int slot, int row_begin,
                int row_end, uint8_t* base);
/* The plan that reads the staged copy instead of the whole frame (same numbers out). */
Plan staged_plan(const Plan& plan, const Staging& staging);
/* Slot `slot` of a staging buffer at `base` (host or device address). */
Frame staged_frame(const Staging& staging, const uint8_t* base, int slot);

}  // namespace edge_pp

#endif /* EDGE_PREPROC_HOST_H */
