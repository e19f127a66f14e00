/* Where the time of edge_preproc's host-pointer path goes on this machine: each step of it
 * (pack the face region into pinned memory, copy in, copy out, unpack into the caller's array)
 * timed alone, with the alternatives (pageable copies, mapped zero-copy, threads) beside it.
 * Not part of the library; build and run on a GPU machine:
 *
 *   nvcc -O2 -std=c++17 -o build/copy_probe benchmarks/copy_probe.cu && build/copy_probe
 *
 * Sizes are bench_preproc's: a 1920x1080 BGR frame, a 505x505 source region, a 3x224x224
 * float32 output. Prints one JSON object of medians in microseconds. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

namespace {

const int kW = 1920, kH = 1080, kC = 3;
const int kRx = 705, kRy = 245, kRw = 505, kRh = 505;
const size_t kRegion = (size_t)kRw * kRh * kC;
const size_t kOut = 3 * 224 * 224 * 4;

double median_us(const std::function<void()>& fn, int reps = 300) {
    for (int i = 0; i < 20; ++i) fn();
    std::vector<double> t(reps);
    for (int i = 0; i < reps; ++i) {
        auto a = std::chrono::steady_clock::now();
        fn();
        t[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count();
    }
    std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
    return t[reps / 2];
}

void pack(const uint8_t* frame, uint8_t* dst, int r0, int r1) {
    for (int y = r0; y < r1; ++y)
        memcpy(dst + (size_t)y * kRw * kC, frame + ((size_t)(kRy + y) * kW + kRx) * kC, (size_t)kRw * kC);
}

void pack_prefetch(const uint8_t* frame, uint8_t* dst) {
    const uint8_t* base = frame + ((size_t)kRy * kW + kRx) * kC;
    size_t row = (size_t)kRw * kC, pitch = (size_t)kW * kC;
    for (int y = 0; y < kRh; ++y) {
        if (y + 4 < kRh)
            for (size_t o = 0; o < row; o += 64) __builtin_prefetch(base + (y + 4) * pitch + o);
        memcpy(dst + y * row, base + y * pitch, row);
    }
}

__global__ void write_out(float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = (float)i;
}

__global__ void read_in(const uint8_t* in, int n, unsigned* sink) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned v = 0;
    for (int j = i; j < n; j += gridDim.x * blockDim.x) v += in[j];
    if (v == 0xffffffffu) *sink = v;
}

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e)); exit(1); } } while (0)

}  // namespace

int main() {
    std::vector<uint8_t> frame((size_t)kW * kH * kC);
    for (size_t i = 0; i < frame.size(); ++i) frame[i] = (uint8_t)(i * 31u);
    std::vector<uint8_t> pageable(kRegion), out_reused(kOut);
    uint8_t *pinned_in, *pinned_out, *mapped_in, *mapped_out, *d_in, *d_out, *dm_in, *dm_out;
    unsigned* sink;
    CK(cudaHostAlloc((void**)&pinned_in, kRegion, cudaHostAllocDefault));
    CK(cudaHostAlloc((void**)&pinned_out, kOut, cudaHostAllocDefault));
    CK(cudaHostAlloc((void**)&mapped_in, kRegion, cudaHostAllocMapped));
    CK(cudaHostAlloc((void**)&mapped_out, kOut, cudaHostAllocMapped));
    CK(cudaHostGetDevicePointer((void**)&dm_in, mapped_in, 0));
    CK(cudaHostGetDevicePointer((void**)&dm_out, mapped_out, 0));
    CK(cudaMalloc((void**)&d_in, kRegion));
    CK(cudaMalloc((void**)&d_out, kOut));
    CK(cudaMalloc((void**)&sink, 4));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    int pageable_access = 0, uses_host_pt = 0, integrated = 0;
    cudaDeviceGetAttribute(&pageable_access, cudaDevAttrPageableMemoryAccess, 0);
    cudaDeviceGetAttribute(&uses_host_pt, cudaDevAttrPageableMemoryAccessUsesHostPageTables, 0);
    cudaDeviceGetAttribute(&integrated, cudaDevAttrIntegrated, 0);

    double r[20];
    int k = 0;
    r[k++] = median_us([&] { pack(frame.data(), pinned_in, 0, kRh); });
    r[k++] = median_us([&] { pack(frame.data(), pageable.data(), 0, kRh); });
    r[k++] = median_us([&] { CK(cudaMemcpyAsync(d_in, pinned_in, kRegion, cudaMemcpyHostToDevice, s)); CK(cudaStreamSynchronize(s)); });
    r[k++] = median_us([&] { CK(cudaMemcpyAsync(pinned_out, d_out, kOut, cudaMemcpyDeviceToHost, s)); CK(cudaStreamSynchronize(s)); });
    r[k++] = median_us([&] { memcpy(out_reused.data(), pinned_out, kOut); });
    r[k++] = median_us([&] { uint8_t* p = (uint8_t*)malloc(kOut); memcpy(p, pinned_out, kOut); free(p); });
    r[k++] = median_us([&] { write_out<<<1, 32, 0, s>>>((float*)d_out, 1); CK(cudaStreamSynchronize(s)); });
    r[k++] = median_us([&] { CK(cudaMemcpy(d_in, pageable.data(), kRegion, cudaMemcpyHostToDevice)); });
    r[k++] = median_us([&] { CK(cudaMemcpy(out_reused.data(), d_out, kOut, cudaMemcpyDeviceToHost)); });
    r[k++] = median_us([&] { write_out<<<(kOut / 4 + 255) / 256, 256, 0, s>>>((float*)dm_out, kOut / 4); CK(cudaStreamSynchronize(s)); });
    r[k++] = median_us([&] { read_in<<<264, 256, 0, s>>>(dm_in, (int)kRegion, sink); CK(cudaStreamSynchronize(s)); });
    r[k++] = median_us([&] { read_in<<<264, 256, 0, s>>>(d_in, (int)kRegion, sink); CK(cudaStreamSynchronize(s)); });
    r[k++] = median_us([&] {
        std::thread t1([&] { pack(frame.data(), pinned_in, 0, kRh / 2); });
        pack(frame.data(), pinned_in, kRh / 2, kRh);
        t1.join();
    });
    r[k++] = median_us([&] { pack_prefetch(frame.data(), pinned_in); });
    r[k++] = median_us([&] {
        std::thread t[3];
        for (int i = 0; i < 3; ++i) t[i] = std::thread([&, i] { pack(frame.data(), pinned_in, kRh * i / 4, kRh * (i + 1) / 4); });
        pack(frame.data(), pinned_in, kRh * 3 / 4, kRh);
        for (auto& th : t) th.join();
    });
    uint8_t* span = frame.data() + (size_t)kRy * kW * kC;
    size_t span_bytes = (size_t)kRh * kW * kC;
    r[k++] = median_us([&] {
        CK(cudaHostRegister(span, span_bytes, cudaHostRegisterDefault));
        CK(cudaHostUnregister(span));
    }, 50);
    CK(cudaHostRegister(span, span_bytes, cudaHostRegisterDefault));
    r[k++] = median_us([&] {
        CK(cudaMemcpy2DAsync(d_in, (size_t)kRw * kC, span + (size_t)kRx * kC, (size_t)kW * kC, (size_t)kRw * kC, kRh, cudaMemcpyHostToDevice, s));
        CK(cudaStreamSynchronize(s));
    });
    CK(cudaHostUnregister(span));
    const char* names[] = {"pack_region_into_pinned", "pack_region_into_pageable", "h2d_pinned_region",
                           "d2h_pinned_output", "unpack_output_into_reused", "unpack_output_into_fresh_malloc",
                           "tiny_kernel_launch_and_sync", "h2d_pageable_region_sync", "d2h_pageable_output_sync",
                           "kernel_writes_output_to_mapped_host", "kernel_reads_region_from_mapped_host",
                           "kernel_reads_region_from_device", "pack_two_threads_spawned",
                           "pack_region_prefetching_into_pinned", "pack_four_threads_spawned",
                           "register_and_unregister_region_rows", "h2d_2d_region_from_registered_frame"};
    printf("{\"integrated\": %d, \"pageable_memory_access\": %d, \"uses_host_page_tables\": %d, \"region_bytes\": %zu, \"output_bytes\": %zu",
           integrated, pageable_access, uses_host_pt, kRegion, kOut);
    for (int i = 0; i < k; ++i) printf(",\n \"%s_us\": %.1f", names[i], r[i]);
    printf("}\n");
    return 0;
}
