/*
 * Per-pixel math shared by the CUDA kernel and the CPU implementation, so the two cannot drift.
 *
 * Everything here is inline and __host__ __device__ under nvcc. Multiplications and additions
 * that OpenCV does as separate roundings go through EDGE_MUL / EDGE_ADD, which stop nvcc (and
 * GCC on aarch64) from contracting them into an FMA; where OpenCV uses an FMA we call fma().
 */
#ifndef EDGE_PREPROC_MATH_H
#define EDGE_PREPROC_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define EDGE_HD __host__ __device__ __forceinline__
#else
#define EDGE_HD inline
#endif

#if defined(__CUDA_ARCH__)
#define EDGE_MUL_D(a, b) __dmul_rn((a), (b))
#define EDGE_ADD_D(a, b) __dadd_rn((a), (b))
#define EDGE_MUL_F(a, b) __fmul_rn((a), (b))
#define EDGE_ADD_F(a, b) __fadd_rn((a), (b))
#define EDGE_SUB_F(a, b) __fsub_rn((a), (b))
#else
#define EDGE_MUL_D(a, b) ((a) * (b))
#define EDGE_ADD_D(a, b) ((a) + (b))
#define EDGE_MUL_F(a, b) ((a) * (b))
#define EDGE_ADD_F(a, b) ((a) + (b))
#define EDGE_SUB_F(a, b) ((a) - (b))
#endif

namespace edge_pp {

/* OpenCV's fixed-point warp constants (imgwarp.cpp): INTER_BITS = 5, AB_BITS = 10. */
constexpr int kInterBits = 5;
constexpr int kInterTab = 1 << kInterBits;
constexpr int kAbBits = 10;
constexpr double kAbScale = 1 << kAbBits;
constexpr int kRoundDelta = (1 << kAbBits) / kInterTab / 2;
/* Float-mode coordinates are clamped here before the int conversion (far outside any image). */
constexpr float kCoordLimit = 16777216.0f;

/* Everything the per-pixel code needs, prepared once on the host (preproc_host.cpp). */
struct Plan {
    double inv[6];      /* output -> source pixels (inverse of the user's matrix) */
    float inv_f[6];     /* the same as float32 (FLOAT mode, as OpenCV >= 4.11 casts it) */
    float mean[3];      /* per output plane: float32(mean) / float32(scale) */
    float inv_std[3];   /* per output plane: float32(scale) / float32(std) */
    int src_channel[3]; /* output plane k reads source channel src_channel[k] */
    int channels;       /* 1, 3 or 4 */
    int src_width;      /* full frame size: borders are decided against it */
    int src_height;
    int roi_x;          /* a Frame's `data` points at pixel (roi_x, roi_y) of the frame */
    int roi_y;
    int out_width;
    int out_height;
    int border;         /* edge_pp_border */
    int interp;         /* edge_pp_interp */
    int dtype;          /* edge_pp_dtype */
};

/* One frame's pixels as the per-pixel code reads them. Each frame has its own pitch: onset and
 * apex of one call may be laid out differently (a strided view and a contiguous copy). */
struct Frame {
    const uint8_t* data; /* pixel (roi_x, roi_y) of the frame */
    size_t pitch;        /* bytes from one row to the next */
};

EDGE_HD int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* saturate_cast<int>(double): round half to even, then clamp. */
EDGE_HD int sat_round(double v) {
    double r = rint(v);
    if (!(r > -2147483648.0)) return (int)(-2147483647 - 1);
    if (r > 2147483647.0) return 2147483647;
    return (int)r;
}

/* One source sample with the border rule; (x, y) are full-frame coordinates. */
EDGE_HD int fetch(const Plan& p, const Frame& f, int x, int y, int c) {
    if (x < 0 || y < 0 || x >= p.src_width || y >= p.src_height) {
        if (p.border == 1) return 0;
        x = clamp_int(x, 0, p.src_width - 1);
        y = clamp_int(y, 0, p.src_height - 1);
    }
    return f.data[(size_t)(y - p.roi_y) * f.pitch + (size_t)(x - p.roi_x) * (size_t)p.channels + c];
}

/* Warped uint8 value of every source channel at output pixel (x, y), as cv2.warpAffine. */
EDGE_HD void warp_pixel(const Plan& p, const Frame& f, int x, int y, int* value) {
    if (p.interp == 0) {
        /* OpenCV <= 4.10: coordinates in 1/1024, reduced to 1/32 pixel; integer weights. */
        int adelta = sat_round(EDGE_MUL_D(EDGE_MUL_D(p.inv[0], (double)x), kAbScale));
        int bdelta = sat_round(EDGE_MUL_D(EDGE_MUL_D(p.inv[3], (double)x), kAbScale));
        int x0 = sat_round(EDGE_MUL_D(EDGE_ADD_D(EDGE_MUL_D(p.inv[1], (double)y), p.inv[2]), kAbScale)) + kRoundDelta;
        int y0 = sat_round(EDGE_MUL_D(EDGE_ADD_D(EDGE_MUL_D(p.inv[4], (double)y), p.inv[5]), kAbScale)) + kRoundDelta;
        int fx_all = (x0 + adelta) >> (kAbBits - kInterBits);
        int fy_all = (y0 + bdelta) >> (kAbBits - kInterBits);
        int sx = clamp_int(fx_all >> kInterBits, -32768, 32767);
        int sy = clamp_int(fy_all >> kInterBits, -32768, 32767);
        int ax = fx_all & (kInterTab - 1);
        int ay = fy_all & (kInterTab - 1);
        int w00 = (kInterTab - ax) * (kInterTab - ay);
        int w01 = ax * (kInterTab - ay);
        int w10 = (kInterTab - ax) * ay;
        int w11 = ax * ay;
        for (int c = 0; c < p.channels; ++c) {
            int s = fetch(p, f, sx, sy, c) * w00 + fetch(p, f, sx + 1, sy, c) * w01 +
                    fetch(p, f, sx, sy + 1, c) * w10 + fetch(p, f, sx + 1, sy + 1, c) * w11;
            value[c] = (s + (1 << (2 * kInterBits - 1))) >> (2 * kInterBits);
        }
    } else {
        /* OpenCV >= 4.11 (warp_kernels.simd.hpp, vector path): float32 matrix, the row term
         * rounded once, x term by FMA, floor, FMA interpolation, round half to even. */
        float row_x = EDGE_ADD_F(EDGE_MUL_F((float)y, p.inv_f[1]), p.inv_f[2]);
        float row_y = EDGE_ADD_F(EDGE_MUL_F((float)y, p.inv_f[4]), p.inv_f[5]);
        float fx = fmaf(p.inv_f[0], (float)x, row_x);
        float fy = fmaf(p.inv_f[3], (float)x, row_y);
        fx = fminf(fmaxf(fx, -kCoordLimit), kCoordLimit);
        fy = fminf(fmaxf(fy, -kCoordLimit), kCoordLimit);
        float flx = floorf(fx);
        float fly = floorf(fy);
        int sx = (int)flx;
        int sy = (int)fly;
        float ax = EDGE_SUB_F(fx, flx);
        float ay = EDGE_SUB_F(fy, fly);
        for (int c = 0; c < p.channels; ++c) {
            float p00 = (float)fetch(p, f, sx, sy, c);
            float p01 = (float)fetch(p, f, sx + 1, sy, c);
            float p10 = (float)fetch(p, f, sx, sy + 1, c);
            float p11 = (float)fetch(p, f, sx + 1, sy + 1, c);
            float top = fmaf(ax, EDGE_SUB_F(p01, p00), p00);
            float bottom = fmaf(ax, EDGE_SUB_F(p11, p10), p10);
            float v = rintf(fmaf(ay, EDGE_SUB_F(bottom, top), top));
            value[c] = (int)fminf(fmaxf(v, 0.0f), 255.0f);
        }
    }
}

/* The three normalised output values at (x, y), in output plane order. */
EDGE_HD void normalized_pixel(const Plan& p, const Frame& f, int x, int y, float* out) {
    int value[4] = {0, 0, 0, 0};
    warp_pixel(p, f, x, y, value);
    for (int k = 0; k < 3; ++k) {
        out[k] = EDGE_MUL_F(EDGE_SUB_F((float)value[p.src_channel[k]], p.mean[k]), p.inv_std[k]);
    }
}

/* float32 -> IEEE half bits, round to nearest even (what numpy and __float2half_rn do). */
inline uint16_t float_to_half_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (absx < 0x38800000u) {                                  /* below 2^-14: subnormal */
        float a;
        memcpy(&a, &absx, sizeof a);
        return (uint16_t)(sign | (uint32_t)rintf(a * 16777216.0f)); /* units of 2^-24 */
    }
    uint32_t mant = absx & 0x7fffffu;
    uint32_t h = ((((absx >> 23) - 127u + 15u)) << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return (uint16_t)(sign | h);
}

}  // namespace edge_pp

#endif /* EDGE_PREPROC_MATH_H */
