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
/* Bounding box of every source pixel the warp can touch, with a 2-pixel guard band. */
Region source_region(const Plan& plan);
size_t output_bytes(const edge_pp_params* params);

}  // namespace edge_pp

#endif /* EDGE_PREPROC_HOST_H */
