/* ctest: argument checks, matrix inversion, Plan/region helpers and the CPU implementation's
 * numbers on tiny inputs, against values worked out by hand. No GPU needed. */
#include <stdint.h>
#include <string.h>

#include <string>
#include <vector>

#include "check.h"
#include "edge_preproc.h"
#include "preproc_host.h"
#include "preproc_math.h"

namespace {

edge_pp_params identity_params(int w, int h) {
    edge_pp_params p;
    memset(&p, 0, sizeof p);
    p.matrix[0] = 1.0;
    p.matrix[4] = 1.0;
    p.out_width = w;
    p.out_height = h;
    p.color_out = EDGE_PP_RGB;
    p.dtype = EDGE_PP_FLOAT32;
    p.border = EDGE_PP_BORDER_REPLICATE;
    p.interp = EDGE_PP_INTERP_FIXED;
    for (int k = 0; k < 3; ++k) {
        p.mean[k] = 0.0f;
        p.std[k] = 1.0f;
    }
    p.scale = 1.0f;
    return p;
}

edge_pp_image image(const std::vector<uint8_t>& data, int w, int h, int color, size_t pitch) {
    edge_pp_image im;
    memset(&im, 0, sizeof im);
    im.data = data.data();
    im.width = w;
    im.height = h;
    im.color = color;
    im.pitch = pitch;
    return im;
}

std::vector<float> run(const edge_pp_image& im, const edge_pp_params& p) {
    edge_pp_context* ctx = nullptr;
    CHECK_EQ(edge_preproc_create(&ctx), (int)EDGE_PP_OK);
    std::vector<float> out(3 * (size_t)p.out_width * (size_t)p.out_height, -999.0f);
    int status = edge_preproc_warp_normalize(ctx, &im, &p, out.data());
    CHECK_EQ(status, (int)EDGE_PP_OK);
    edge_preproc_destroy(ctx);
    return out;
}

bool contains(const char* text, const char* part) { return strstr(text, part) != nullptr; }

void test_invert_affine() {
    double m[6] = {2, 0, 3, 0, 4, 5}, inv[6];
    CHECK(edge_pp::invert_affine(m, inv));
    CHECK_NEAR(inv[0], 0.5, 1e-15);
    CHECK_NEAR(inv[1], 0.0, 1e-15);
    CHECK_NEAR(inv[2], -1.5, 1e-15);
    CHECK_NEAR(inv[4], 0.25, 1e-15);
    CHECK_NEAR(inv[5], -1.25, 1e-15);
    /* rotation + scale + shift: M applied after inv is the identity */
    double c = 0.8 * 1.3, s = 0.6 * 1.3;
    double r[6] = {c, -s, 7.0, s, c, -2.0}, ri[6];
    CHECK(edge_pp::invert_affine(r, ri));
    double x = 3.25, y = -1.5;
    double u = r[0] * x + r[1] * y + r[2], v = r[3] * x + r[4] * y + r[5];
    CHECK_NEAR(ri[0] * u + ri[1] * v + ri[2], x, 1e-12);
    CHECK_NEAR(ri[3] * u + ri[4] * v + ri[5], y, 1e-12);
    double singular[6] = {1, 2, 0, 2, 4, 0};
    CHECK(!edge_pp::invert_affine(singular, inv));
    double nan_m[6] = {1, 0, NAN, 0, 1, 0};
    CHECK(!edge_pp::invert_affine(nan_m, inv));
}

void test_argument_checks() {
    std::vector<uint8_t> px(4 * 4 * 3, 7);
    edge_pp_image im = image(px, 4, 4, EDGE_PP_RGB, 12);
    edge_pp_params p = identity_params(4, 4);
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &p), (int)EDGE_PP_OK);
    CHECK_EQ(edge_preproc_validate(nullptr, nullptr, &p), (int)EDGE_PP_ERR_NULL);
    CHECK_EQ(edge_preproc_validate(&im, nullptr, nullptr), (int)EDGE_PP_ERR_NULL);
    edge_pp_image bad = im;
    bad.data = nullptr;
    CHECK_EQ(edge_preproc_validate(&bad, nullptr, &p), (int)EDGE_PP_ERR_NULL);
    CHECK(contains(edge_preproc_last_error(), "frame"));
    bad = im;
    bad.color = 9;
    CHECK_EQ(edge_preproc_validate(&bad, nullptr, &p), (int)EDGE_PP_ERR_COLOR);
    CHECK(contains(edge_preproc_last_error(), "unknown colour order 9"));
    bad = im;
    bad.width = 0;
    CHECK_EQ(edge_preproc_validate(&bad, nullptr, &p), (int)EDGE_PP_ERR_SIZE);
    bad = im;
    bad.height = 40000;
    CHECK_EQ(edge_preproc_validate(&bad, nullptr, &p), (int)EDGE_PP_ERR_SIZE);
    bad = im;
    bad.pitch = 11;
    CHECK_EQ(edge_preproc_validate(&bad, nullptr, &p), (int)EDGE_PP_ERR_PITCH);
    CHECK(contains(edge_preproc_last_error(), "pitch 11 bytes is less than width*channels = 12"));
    bad = im;
    bad.color = EDGE_PP_RGBA;
    CHECK_EQ(edge_preproc_validate(&bad, nullptr, &p), (int)EDGE_PP_ERR_PITCH);
    bad.pitch = 16;
    CHECK_EQ(edge_preproc_validate(&bad, nullptr, &p), (int)EDGE_PP_OK);

    edge_pp_params q = p;
    q.out_width = 0;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_SIZE);
    q = p;
    q.color_out = EDGE_PP_GRAY;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_COLOR);
    q = p;
    q.dtype = 5;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_ARG);
    q = p;
    q.border = 3;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_ARG);
    q = p;
    q.interp = 2;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_ARG);
    q = p;
    q.std[1] = 0.0f;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_NORM);
    CHECK(contains(edge_preproc_last_error(), "std[1]"));
    q = p;
    q.scale = 0.0f;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_NORM);
    q = p;
    q.mean[2] = NAN;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_NORM);
    q = p;
    q.matrix[0] = 1;
    q.matrix[1] = 2;
    q.matrix[3] = 2;
    q.matrix[4] = 4;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_MATRIX);
    CHECK(contains(edge_preproc_last_error(), "not invertible"));
    q = p;
    q.matrix[2] = INFINITY;
    CHECK_EQ(edge_preproc_validate(&im, nullptr, &q), (int)EDGE_PP_ERR_MATRIX);

    std::vector<uint8_t> px2(5 * 4 * 3, 7);
    edge_pp_image other = image(px2, 5, 4, EDGE_PP_RGB, 15);
    CHECK_EQ(edge_preproc_validate(&im, &other, &p), (int)EDGE_PP_ERR_SIZE);
    CHECK(contains(edge_preproc_last_error(), "onset is 4x4"));
    other = im;
    other.color = EDGE_PP_BGR;
    CHECK_EQ(edge_preproc_validate(&im, &other, &p), (int)EDGE_PP_ERR_SIZE);
    CHECK_EQ(edge_preproc_validate(&im, &im, &p), (int)EDGE_PP_OK);
    CHECK(edge_preproc_last_error()[0] == '\0');

    /* a run with bad arguments fails the same way and writes nothing */
    edge_pp_context* ctx = nullptr;
    CHECK_EQ(edge_preproc_create(&ctx), (int)EDGE_PP_OK);
    std::vector<float> out(48, 5.0f);
    bad = im;
    bad.pitch = 2;
    CHECK_EQ(edge_preproc_warp_normalize(ctx, &bad, &p, out.data()), (int)EDGE_PP_ERR_PITCH);
    CHECK_EQ(out[0], 5.0f);
    CHECK_EQ(edge_preproc_warp_normalize(ctx, &im, &p, nullptr), (int)EDGE_PP_ERR_NULL);
    CHECK_EQ(edge_preproc_warp_normalize_diff(ctx, &im, nullptr, &p, out.data()),
             (int)EDGE_PP_ERR_NULL);
    edge_preproc_destroy(ctx);
    CHECK_EQ(edge_preproc_warp_normalize_device(&im, &p, out.data(), nullptr),
             (int)EDGE_PP_ERR_UNSUPPORTED);
    CHECK(std::string(edge_preproc_status_string(EDGE_PP_ERR_PITCH)) == "pitch smaller than a row");
    CHECK_EQ(edge_preproc_abi_version(), EDGE_PREPROC_ABI_VERSION);
    CHECK(std::string(edge_preproc_backend()) == "cpu");
    CHECK_EQ(edge_preproc_device_count(), 0);
}

void test_plan() {
    std::vector<uint8_t> px(4 * 4 * 4, 0);
    edge_pp_params p = identity_params(2, 2);
    p.mean[0] = 0.5f;
    p.std[0] = 0.25f;
    p.scale = 1.0f / 255.0f;
    edge_pp::Plan plan;
    struct Case {
        int in, out, c0, c1, c2, channels;
    } cases[] = {
        {EDGE_PP_RGB, EDGE_PP_RGB, 0, 1, 2, 3},  {EDGE_PP_BGR, EDGE_PP_RGB, 2, 1, 0, 3},
        {EDGE_PP_BGR, EDGE_PP_BGR, 0, 1, 2, 3},  {EDGE_PP_RGB, EDGE_PP_BGR, 2, 1, 0, 3},
        {EDGE_PP_BGRA, EDGE_PP_RGB, 2, 1, 0, 4}, {EDGE_PP_RGBA, EDGE_PP_RGB, 0, 1, 2, 4},
        {EDGE_PP_GRAY, EDGE_PP_RGB, 0, 0, 0, 1},
    };
    for (const Case& c : cases) {
        p.color_out = c.out;
        edge_pp_image im = image(px, 4, 4, c.in, 16);
        CHECK_EQ(edge_pp::make_plan(&im, nullptr, &p, &plan), (int)EDGE_PP_OK);
        CHECK_EQ(plan.src_channel[0], c.c0);
        CHECK_EQ(plan.src_channel[1], c.c1);
        CHECK_EQ(plan.src_channel[2], c.c2);
        CHECK_EQ(plan.channels, c.channels);
    }
    /* float32(mean) / float32(scale) and float32(scale) / float32(std), as normalize_frame */
    CHECK_EQ(plan.mean[0], 0.5f / (1.0f / 255.0f));
    CHECK_EQ(plan.inv_std[0], (1.0f / 255.0f) / 0.25f);
}

void test_source_region() {
    std::vector<uint8_t> px(100 * 100, 0);
    edge_pp_image im = image(px, 100, 100, EDGE_PP_GRAY, 100);
    edge_pp_params p = identity_params(10, 8);
    edge_pp::Plan plan;
    CHECK_EQ(edge_pp::make_plan(&im, nullptr, &p, &plan), (int)EDGE_PP_OK);
    edge_pp::Region r = edge_pp::source_region(plan);
    CHECK_EQ(r.x, 0);
    CHECK_EQ(r.y, 0);
    CHECK_EQ(r.width, 12);  /* samples 0..9 (+1 neighbour, +2 guard) */
    CHECK_EQ(r.height, 10);
    /* crop of the frame's middle at half size: output (x, y) samples (50 + 2x, 40 + 2y) */
    p.matrix[0] = 0.5;
    p.matrix[4] = 0.5;
    p.matrix[2] = -25.0;
    p.matrix[5] = -20.0;
    CHECK_EQ(edge_pp::make_plan(&im, nullptr, &p, &plan), (int)EDGE_PP_OK);
    r = edge_pp::source_region(plan);
    CHECK_EQ(r.x, 48);
    CHECK_EQ(r.y, 38);
    CHECK_EQ(r.x + r.width, 71);  /* last sample 68, +1, +2 */
    CHECK_EQ(r.y + r.height, 57); /* last sample 54, +1, +2 */
    /* a crop entirely outside the frame still gives a non-empty region inside it */
    p.matrix[2] = -500.0;
    CHECK_EQ(edge_pp::make_plan(&im, nullptr, &p, &plan), (int)EDGE_PP_OK);
    r = edge_pp::source_region(plan);
    CHECK(r.width >= 1 && r.height >= 1 && r.x + r.width <= 100 && r.y + r.height <= 100);
}

void test_identity_and_colour() {
    /* 2x2 BGR frame, pixels (B, G, R) = (10k + 1, 10k + 2, 10k + 3) */
    std::vector<uint8_t> px = {1, 2, 3, 11, 12, 13, 21, 22, 23, 31, 32, 33};
    edge_pp_image im = image(px, 2, 2, EDGE_PP_BGR, 6);
    for (int interp = 0; interp < 2; ++interp) {
        edge_pp_params p = identity_params(2, 2);
        p.interp = interp;
        std::vector<float> out = run(im, p);
        /* planes R, G, B */
        const float want[12] = {3, 13, 23, 33, 2, 12, 22, 32, 1, 11, 21, 31};
        for (int i = 0; i < 12; ++i) CHECK_EQ(out[i], want[i]);
        p.color_out = EDGE_PP_BGR;
        out = run(im, p);
        const float want_bgr[12] = {1, 11, 21, 31, 2, 12, 22, 32, 3, 13, 23, 33};
        for (int i = 0; i < 12; ++i) CHECK_EQ(out[i], want_bgr[i]);
    }
}

void test_bilinear_and_rounding() {
    /* gray row [10, 20, 40, 10, 23]; output = source shifted left by half a pixel */
    std::vector<uint8_t> px = {10, 20, 40, 10, 23};
    edge_pp_image im = image(px, 5, 1, EDGE_PP_GRAY, 5);
    edge_pp_params p = identity_params(4, 1);
    p.matrix[2] = -0.5; /* out_x = src_x - 0.5, so out_x samples src_x + 0.5 */
    for (int interp = 0; interp < 2; ++interp) {
        p.interp = interp;
        std::vector<float> out = run(im, p);
        CHECK_EQ(out[0], 15.0f);  /* (10 + 20) / 2 */
        CHECK_EQ(out[1], 30.0f);  /* (20 + 40) / 2 */
        CHECK_EQ(out[2], 25.0f);  /* (40 + 10) / 2 */
        /* (10 + 23) / 2 = 16.5: OpenCV <= 4.10 rounds half up (fixed point), >= 4.11 to even */
        CHECK_EQ(out[3], interp == EDGE_PP_INTERP_FIXED ? 17.0f : 16.0f);
        CHECK_EQ(out[4 + 3], 17.0f - interp); /* gray: all three planes equal */
        CHECK_EQ(out[8 + 3], 17.0f - interp);
    }
    /* a quarter pixel: 10 + (20 - 10) / 4 = 12.5 -> 13 (fixed: (10*24 + 20*8)*32 ... + half) */
    p.matrix[2] = -0.25;
    p.interp = EDGE_PP_INTERP_FIXED;
    std::vector<float> out = run(im, p);
    CHECK_EQ(out[0], 13.0f);
    p.interp = EDGE_PP_INTERP_FLOAT;
    out = run(im, p);
    CHECK_EQ(out[0], 12.0f);
}

void test_borders() {
    std::vector<uint8_t> px = {50, 60, 70};
    edge_pp_image im = image(px, 3, 1, EDGE_PP_GRAY, 3);
    edge_pp_params p = identity_params(5, 1);
    p.matrix[2] = 1.0; /* out_x = src_x + 1: output 0 samples src -1, output 4 samples src 3 */
    for (int interp = 0; interp < 2; ++interp) {
        p.interp = interp;
        p.border = EDGE_PP_BORDER_REPLICATE;
        std::vector<float> out = run(im, p);
        const float rep[5] = {50, 50, 60, 70, 70};
        for (int i = 0; i < 5; ++i) CHECK_EQ(out[i], rep[i]);
        p.border = EDGE_PP_BORDER_CONSTANT;
        out = run(im, p);
        const float con[5] = {0, 50, 60, 70, 0};
        for (int i = 0; i < 5; ++i) CHECK_EQ(out[i], con[i]);
    }
    /* half a pixel outside with a constant border: (0 + 50) / 2 */
    p.matrix[2] = 0.5;
    p.border = EDGE_PP_BORDER_CONSTANT;
    p.interp = EDGE_PP_INTERP_FIXED;
    std::vector<float> out = run(im, p);
    CHECK_EQ(out[0], 25.0f);
}

void test_normalisation_pitch_and_diff() {
    /* 2x1 RGB with 3 padding bytes per row of garbage */
    std::vector<uint8_t> onset = {255, 0, 128, 0, 255, 64, 99, 99, 99};
    std::vector<uint8_t> apex = {200, 10, 128, 5, 250, 74, 77, 77, 77};
    edge_pp_image a = image(onset, 2, 1, EDGE_PP_RGB, 9);
    edge_pp_image b = image(apex, 2, 1, EDGE_PP_RGB, 9);
    edge_pp_params p = identity_params(2, 1);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std_[3] = {0.229f, 0.224f, 0.225f};
    for (int k = 0; k < 3; ++k) {
        p.mean[k] = mean[k];
        p.std[k] = std_[k];
    }
    p.scale = 1.0f / 255.0f;
    std::vector<float> out = run(a, p);
    auto norm = [&](int v, int k) {
        return ((float)v - mean[k] / p.scale) * (p.scale / std_[k]);
    };
    CHECK_EQ(out[0], norm(255, 0));
    CHECK_EQ(out[1], norm(0, 0));
    CHECK_EQ(out[2], norm(0, 1));
    CHECK_EQ(out[5], norm(64, 2));
    CHECK_NEAR(out[0], (1.0 - 0.485) / 0.229, 1e-5);

    edge_pp_context* ctx = nullptr;
    CHECK_EQ(edge_preproc_create(&ctx), (int)EDGE_PP_OK);
    std::vector<float> diff(6);
    CHECK_EQ(edge_preproc_warp_normalize_diff(ctx, &a, &b, &p, diff.data()), (int)EDGE_PP_OK);
    CHECK_EQ(diff[0], norm(200, 0) - norm(255, 0));
    CHECK_EQ(diff[1], norm(5, 0) - norm(0, 0));
    CHECK_EQ(diff[4], norm(128, 2) - norm(128, 2));
    CHECK_NEAR(diff[0], -55.0 / 255.0 / 0.229, 1e-5);

    p.dtype = EDGE_PP_FLOAT16;
    std::vector<uint16_t> half(6);
    CHECK_EQ(edge_preproc_warp_normalize(ctx, &a, &p, half.data()), (int)EDGE_PP_OK);
    CHECK_EQ(half[0], edge_pp::float_to_half_bits(norm(255, 0)));
    edge_preproc_destroy(ctx);
}

void test_half_conversion() {
    using edge_pp::float_to_half_bits;
    CHECK_EQ(float_to_half_bits(0.0f), (uint16_t)0x0000);
    CHECK_EQ(float_to_half_bits(-0.0f), (uint16_t)0x8000);
    CHECK_EQ(float_to_half_bits(1.0f), (uint16_t)0x3c00);
    CHECK_EQ(float_to_half_bits(-2.0f), (uint16_t)0xc000);
    CHECK_EQ(float_to_half_bits(65504.0f), (uint16_t)0x7bff);
    CHECK_EQ(float_to_half_bits(65519.0f), (uint16_t)0x7bff);
    CHECK_EQ(float_to_half_bits(65520.0f), (uint16_t)0x7c00);
    CHECK_EQ(float_to_half_bits(INFINITY), (uint16_t)0x7c00);
    CHECK_EQ(float_to_half_bits(NAN) & 0x7c00, 0x7c00);
    CHECK(float_to_half_bits(NAN) & 0x3ff);
    CHECK_EQ(float_to_half_bits(5.9604645e-8f), (uint16_t)0x0001);  /* 2^-24 */
    CHECK_EQ(float_to_half_bits(2.9802322e-8f), (uint16_t)0x0000);  /* 2^-25: tie to even 0 */
    CHECK_EQ(float_to_half_bits(6.1035156e-5f), (uint16_t)0x0400);  /* 2^-14 */
    CHECK_EQ(float_to_half_bits(1.0f + 1.0f / 2048.0f), (uint16_t)0x3c00);  /* tie -> even */
    CHECK_EQ(float_to_half_bits(1.0f + 3.0f / 2048.0f), (uint16_t)0x3c02);  /* tie -> even */
    CHECK_EQ(float_to_half_bits(0.1f), (uint16_t)0x2e66);
}

/* A w x h frame of `channels` whose rows are `pitch` bytes apart; the padding holds garbage
 * (0xEE) that a wrong pitch would read. */
std::vector<uint8_t> strided_pixels(int w, int h, int channels, size_t pitch, unsigned seed) {
    std::vector<uint8_t> px(pitch * (size_t)h, 0xEE);
    for (int y = 0; y < h; ++y) {
        for (int i = 0; i < w * channels; ++i) {
            px[(size_t)y * pitch + (size_t)i] = (uint8_t)(((unsigned)(y * w * channels + i) * 37u + seed) % 251u);
        }
    }
    return px;
}

/* The same pixels without padding. */
std::vector<uint8_t> packed(const std::vector<uint8_t>& px, int w, int h, int channels,
                            size_t pitch) {
    std::vector<uint8_t> out((size_t)w * h * channels);
    for (int y = 0; y < h; ++y) {
        memcpy(&out[(size_t)y * w * channels], &px[(size_t)y * pitch], (size_t)w * channels);
    }
    return out;
}

edge_pp_params tilted_params(int w, int h) {
    edge_pp_params p = identity_params(w, h);
    p.matrix[0] = 0.9;
    p.matrix[1] = -0.2;
    p.matrix[2] = -10.3;
    p.matrix[3] = 0.25;
    p.matrix[4] = 0.85;
    p.matrix[5] = -8.7;
    return p;
}

void test_staging_layout() {
    std::vector<uint8_t> px(100 * 100 * 3, 0);
    edge_pp_image im = image(px, 100, 100, EDGE_PP_BGR, 300);
    edge_pp_params p = identity_params(10, 8);
    p.matrix[0] = 0.5;
    p.matrix[4] = 0.5;
    p.matrix[2] = -25.0;
    p.matrix[5] = -20.0;
    edge_pp::Plan plan;
    CHECK_EQ(edge_pp::make_plan(&im, nullptr, &p, &plan), (int)EDGE_PP_OK);
    edge_pp::Staging s = edge_pp::staging_layout(plan, 2);
    CHECK_EQ(s.region.x, 48);
    CHECK_EQ(s.region.y, 38);
    CHECK_EQ(s.region.width, 23);
    CHECK_EQ(s.region.height, 19);
    CHECK_EQ(s.row_bytes, (size_t)23 * 3);           /* packed: the caller's pitch is gone */
    CHECK_EQ(s.slot_bytes, (size_t)1536);            /* 69 * 19 = 1311, rounded up to 256 */
    CHECK_EQ(s.total_bytes, (size_t)3072);
    CHECK_EQ(s.chunk_rows, 19);                      /* one chunk: far below 256 KiB */
    edge_pp::Plan staged = edge_pp::staged_plan(plan, s);
    CHECK_EQ(staged.roi_x, 48);
    CHECK_EQ(staged.roi_y, 38);
    const uint8_t* base = reinterpret_cast<const uint8_t*>(4096);
    edge_pp::Frame f = edge_pp::staged_frame(s, base, 1);
    CHECK(f.data == base + 1536);
    CHECK_EQ(f.pitch, (size_t)69);
    /* a 1080p face crop: chunks of whole rows of at most 256 KiB */
    std::vector<uint8_t> big(1, 0);
    edge_pp_image hd = image(big, 1920, 1080, EDGE_PP_BGR, 1920 * 3 + 64);
    edge_pp_params q = identity_params(224, 224);
    q.matrix[0] = q.matrix[4] = 224.0 / 450.0;
    q.matrix[2] = 112 - 224.0 / 450.0 * 960;
    q.matrix[5] = 112 - 224.0 / 450.0 * 500;
    CHECK_EQ(edge_pp::make_plan(&hd, nullptr, &q, &plan), (int)EDGE_PP_OK);
    s = edge_pp::staging_layout(plan, 1);
    CHECK(s.region.width > 450 && s.region.width < 460);
    CHECK(s.row_bytes * (size_t)s.chunk_rows <= ((size_t)256 << 10));
    CHECK(s.row_bytes * (size_t)(s.chunk_rows + 1) > ((size_t)256 << 10));
}

void test_stage_rows_skips_the_padding() {
    const int w = 40, h = 30;
    const size_t pitch = w * 3 + 17; /* odd padding, as a cropped numpy view has */
    std::vector<uint8_t> px = strided_pixels(w, h, 3, pitch, 5);
    edge_pp_image im = image(px, w, h, EDGE_PP_RGB, pitch);
    edge_pp_params p = tilted_params(9, 7);
    edge_pp::Plan plan;
    CHECK_EQ(edge_pp::make_plan(&im, nullptr, &p, &plan), (int)EDGE_PP_OK);
    edge_pp::Staging s = edge_pp::staging_layout(plan, 2);
    std::vector<uint8_t> buf(s.total_bytes, 0);
    edge_pp::stage_rows(s, im, 1, 0, s.region.height / 2, buf.data());
    edge_pp::stage_rows(s, im, 1, s.region.height / 2, s.region.height, buf.data());
    int wrong = 0;
    for (int y = 0; y < s.region.height; ++y) {
        for (size_t i = 0; i < s.row_bytes; ++i) {
            uint8_t want = px[(size_t)(s.region.y + y) * pitch + (size_t)s.region.x * 3 + i];
            wrong += buf[s.slot_bytes + (size_t)y * s.row_bytes + i] != want;
        }
    }
    CHECK_EQ(wrong, 0);
    for (size_t i = 0; i < s.slot_bytes; ++i) wrong += buf[i] != 0; /* slot 0 untouched */
    CHECK_EQ(wrong, 0);
}

void test_region_matches_full_frame() {
    /* The host-pointer path reads through a staged region copy; the per-pixel code must give
     * the same values from it as from the whole frame, for strided frames too. */
    const int w = 40, h = 30;
    for (size_t pad : {(size_t)0, (size_t)13}) {
        const size_t pitch = (size_t)w * 3 + pad;
        std::vector<uint8_t> px = strided_pixels(w, h, 3, pitch, 11);
        edge_pp_image im = image(px, w, h, EDGE_PP_BGR, pitch);
        edge_pp_params p = tilted_params(9, 7);
        for (int interp = 0; interp < 2; ++interp) {
            p.interp = interp;
            edge_pp::Plan full;
            CHECK_EQ(edge_pp::make_plan(&im, nullptr, &p, &full), (int)EDGE_PP_OK);
            edge_pp::Staging s = edge_pp::staging_layout(full, 1);
            CHECK(s.region.width < w || s.region.height < h);
            std::vector<uint8_t> region(s.total_bytes);
            edge_pp::stage_rows(s, im, 0, 0, s.region.height, region.data());
            edge_pp::Plan sub = edge_pp::staged_plan(full, s);
            edge_pp::Frame in_place = edge_pp::frame_in_place(im);
            edge_pp::Frame staged = edge_pp::staged_frame(s, region.data(), 0);
            int differ = 0;
            for (int y = 0; y < p.out_height; ++y) {
                for (int x = 0; x < p.out_width; ++x) {
                    float a[3], b[3];
                    edge_pp::normalized_pixel(full, in_place, x, y, a);
                    edge_pp::normalized_pixel(sub, staged, x, y, b);
                    for (int k = 0; k < 3; ++k) differ += a[k] != b[k];
                }
            }
            CHECK_EQ(differ, 0);
        }
    }
}

void test_diff_with_a_strided_onset() {
    /* Issue 15: onset a strided view, apex contiguous. Each frame must be read with its own
     * pitch; reading the apex with the onset's pitch changed almost every output. */
    const int w = 48, h = 36;
    const size_t pitch = (size_t)w * 3 + 32;
    std::vector<uint8_t> onset_px = strided_pixels(w, h, 3, pitch, 3);
    std::vector<uint8_t> apex_px = packed(strided_pixels(w, h, 3, pitch, 77), w, h, 3, pitch);
    std::vector<uint8_t> onset_packed = packed(onset_px, w, h, 3, pitch);
    edge_pp_image onset = image(onset_px, w, h, EDGE_PP_BGR, pitch);
    edge_pp_image apex = image(apex_px, w, h, EDGE_PP_BGR, (size_t)w * 3);
    edge_pp_image onset_c = image(onset_packed, w, h, EDGE_PP_BGR, (size_t)w * 3);
    edge_pp_params p = tilted_params(16, 12);
    p.scale = 1.0f / 255.0f;
    p.mean[0] = 0.485f;
    p.std[0] = 0.229f;
    const size_t n = 3 * 16 * 12;
    edge_pp_context* ctx = nullptr;
    CHECK_EQ(edge_preproc_create(&ctx), (int)EDGE_PP_OK);
    std::vector<float> diff(n), diff_c(n), a(n), b(n);
    CHECK_EQ(edge_preproc_warp_normalize_diff(ctx, &onset, &apex, &p, diff.data()), (int)EDGE_PP_OK);
    CHECK_EQ(edge_preproc_warp_normalize_diff(ctx, &onset_c, &apex, &p, diff_c.data()),
             (int)EDGE_PP_OK);
    CHECK_EQ(edge_preproc_warp_normalize(ctx, &onset_c, &p, a.data()), (int)EDGE_PP_OK);
    CHECK_EQ(edge_preproc_warp_normalize(ctx, &apex, &p, b.data()), (int)EDGE_PP_OK);
    int differ = 0, moved = 0;
    for (size_t i = 0; i < n; ++i) {
        differ += diff[i] != diff_c[i];
        differ += diff[i] != b[i] - a[i];
        moved += diff[i] != 0.0f;
    }
    CHECK_EQ(differ, 0);
    CHECK(moved > (int)n / 2);
    /* apex strided, onset contiguous: the other way round */
    std::vector<uint8_t> apex_strided = strided_pixels(w, h, 3, pitch, 77);
    edge_pp_image apex_s = image(apex_strided, w, h, EDGE_PP_BGR, pitch);
    CHECK_EQ(edge_preproc_warp_normalize_diff(ctx, &onset_c, &apex_s, &p, diff.data()),
             (int)EDGE_PP_OK);
    differ = 0;
    for (size_t i = 0; i < n; ++i) differ += diff[i] != diff_c[i];
    CHECK_EQ(differ, 0);
    edge_preproc_destroy(ctx);
}

void test_batch() {
    const int w = 48, h = 36;
    std::vector<uint8_t> f0 = strided_pixels(w, h, 3, (size_t)w * 3 + 7, 1);
    std::vector<uint8_t> f1 = strided_pixels(w, h, 3, (size_t)w * 3, 2);
    std::vector<uint8_t> f2 = strided_pixels(w, h, 3, (size_t)w * 3 + 64, 3);
    edge_pp_image frames[3] = {image(f0, w, h, EDGE_PP_RGB, (size_t)w * 3 + 7),
                               image(f1, w, h, EDGE_PP_RGB, (size_t)w * 3),
                               image(f2, w, h, EDGE_PP_RGB, (size_t)w * 3 + 64)};
    edge_pp_params p = tilted_params(16, 12);
    const size_t n = 3 * 16 * 12;
    edge_pp_context* ctx = nullptr;
    CHECK_EQ(edge_preproc_create(&ctx), (int)EDGE_PP_OK);
    std::vector<float> batch(3 * n, -1.0f), one(n);
    CHECK_EQ(edge_preproc_warp_normalize_batch(ctx, frames, 3, &p, batch.data()), (int)EDGE_PP_OK);
    int differ = 0;
    for (int i = 0; i < 3; ++i) {
        CHECK_EQ(edge_preproc_warp_normalize(ctx, &frames[i], &p, one.data()), (int)EDGE_PP_OK);
        for (size_t j = 0; j < n; ++j) differ += batch[(size_t)i * n + j] != one[j];
    }
    CHECK_EQ(differ, 0);
    CHECK_EQ(edge_preproc_warp_normalize_batch(ctx, frames, 0, &p, batch.data()),
             (int)EDGE_PP_ERR_SIZE);
    CHECK(contains(edge_preproc_last_error(), "batch of 0 frames is outside 1..32"));
    CHECK_EQ(edge_preproc_warp_normalize_batch(ctx, frames, EDGE_PP_MAX_BATCH + 1, &p,
                                               batch.data()),
             (int)EDGE_PP_ERR_SIZE);
    edge_pp_image mixed[2] = {frames[0], frames[1]};
    mixed[1].width = w - 1;
    CHECK_EQ(edge_preproc_warp_normalize_batch(ctx, mixed, 2, &p, batch.data()),
             (int)EDGE_PP_ERR_SIZE);
    CHECK(contains(edge_preproc_last_error(), "frame 0 is 48x36 colour 1 but frame 1 is 47x36"));
    mixed[1] = frames[1];
    mixed[1].pitch = 3;
    CHECK_EQ(edge_preproc_warp_normalize_batch(ctx, mixed, 2, &p, batch.data()),
             (int)EDGE_PP_ERR_PITCH);
    CHECK(contains(edge_preproc_last_error(), "frame 1: pitch 3 bytes"));
    CHECK_EQ(edge_preproc_warp_normalize_batch(ctx, nullptr, 2, &p, batch.data()),
             (int)EDGE_PP_ERR_NULL);
    CHECK_EQ(edge_preproc_warp_normalize_batch_device(frames, 3, &p, batch.data(), nullptr),
             (int)EDGE_PP_ERR_UNSUPPORTED);
    edge_preproc_destroy(ctx);
}

}  // namespace

int main() {
    test_invert_affine();
    test_argument_checks();
    test_plan();
    test_source_region();
    test_identity_and_colour();
    test_bilinear_and_rounding();
    test_borders();
    test_normalisation_pitch_and_diff();
    test_half_conversion();
    test_staging_layout();
    test_stage_rows_skips_the_padding();
    test_region_matches_full_frame();
    test_diff_with_a_strided_onset();
    test_batch();
    return report("test_preproc_host");
}
