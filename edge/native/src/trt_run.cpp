/* edge_trt_run: run a bundle's TensorRT engine without Python and time it with CUDA events.
 *
 * Reads <bundle>/manifest.json, picks the engine whose key fits this GPU and TensorRT
 * (trt_run_core.cpp), deserialises it, allocates every I/O tensor by name, and times
 * enqueueV3 (TensorRT 8.5+; the name-based API is the same on 8.5, 10.x and 11.x). Inputs are
 * zero-filled: this measures the engine, not a model's accuracy (edge-bench does that). */
#include <NvInfer.h>
#include <cuda_runtime.h>
#include <stdio.h>

#include <memory>
#include <string>
#include <vector>

#include "trt_run_core.h"

namespace {

using edge_trt::Error;

class Logger : public nvinfer1::ILogger {
  public:
    void log(Severity severity, const char* msg) noexcept override {
        if (severity <= Severity::kWARNING) fprintf(stderr, "edge_trt_run: tensorrt: %s\n", msg);
    }
};

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) {
        throw Error(std::string(what) + ": " + cudaGetErrorString(err));
    }
}

size_t element_size(nvinfer1::DataType type) {
    switch (type) {
        case nvinfer1::DataType::kFLOAT: return 4;
        case nvinfer1::DataType::kHALF: return 2;
        case nvinfer1::DataType::kINT8: return 1;
        case nvinfer1::DataType::kINT32: return 4;
        case nvinfer1::DataType::kBOOL: return 1;
        default: return 8; /* newer wide types: over-allocate rather than under */
    }
}

edge_trt::Runtime probe_runtime() {
    edge_trt::Runtime rt;
    rt.tensorrt = edge_trt::trt_version_text(getInferLibVersion());
    int device = 0;
    cudaDeviceProp prop;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    rt.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
    return rt;
}

struct Buffers {
    std::vector<void*> ptrs;
    ~Buffers() {
        for (void* p : ptrs) cudaFree(p);
    }
};

int run(const edge_trt::Options& options) {
    std::string manifest_path = edge_trt::join_path(options.bundle, "manifest.json");
    edge_trt::Json manifest =
        edge_trt::parse_json(edge_trt::read_file(manifest_path), manifest_path);
    edge_trt::Runtime rt = probe_runtime();
    edge_trt::EngineChoice choice = edge_trt::choose_engine(manifest, options, rt);
    for (const auto& w : choice.warnings) fprintf(stderr, "edge_trt_run: warning: %s\n", w.c_str());
    std::string plan = edge_trt::read_file(choice.file);

    Logger logger;
    std::unique_ptr<nvinfer1::IRuntime> runtime(nvinfer1::createInferRuntime(logger));
    if (!runtime) throw Error("createInferRuntime failed");
    std::unique_ptr<nvinfer1::ICudaEngine> engine(
        runtime->deserializeCudaEngine(plan.data(), plan.size()));
    if (!engine) throw Error(choice.file + ": TensorRT could not deserialise the engine");
    std::unique_ptr<nvinfer1::IExecutionContext> context(engine->createExecutionContext());
    if (!context) throw Error(choice.file + ": createExecutionContext failed");

    cudaStream_t stream;
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    Buffers buffers;
    int n = engine->getNbIOTensors();
    for (int i = 0; i < n; ++i) {
        const char* name = engine->getIOTensorName(i);
        nvinfer1::Dims dims = engine->getTensorShape(name);
        bool input = engine->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
        if (input) {
            bool dynamic = false;
            for (int d = 0; d < dims.nbDims; ++d) {
                if (dims.d[d] < 0) {
                    dims.d[d] = 1; /* batch 1 for a dynamic axis */
                    dynamic = true;
                }
            }
            if (dynamic && !context->setInputShape(name, dims)) {
                throw Error(std::string("setInputShape failed for input ") + name);
            }
        }
    }
    for (int i = 0; i < n; ++i) {
        const char* name = engine->getIOTensorName(i);
        nvinfer1::Dims dims = context->getTensorShape(name);
        size_t count = 1;
        for (int d = 0; d < dims.nbDims; ++d) count *= (size_t)(dims.d[d] > 0 ? dims.d[d] : 1);
        size_t bytes = count * element_size(engine->getTensorDataType(name));
        void* ptr = nullptr;
        check(cudaMalloc(&ptr, bytes), "cudaMalloc");
        buffers.ptrs.push_back(ptr);
        check(cudaMemset(ptr, 0, bytes), "cudaMemset");
        if (!context->setTensorAddress(name, ptr)) {
            throw Error(std::string("setTensorAddress failed for ") + name);
        }
    }

    for (int i = 0; i < options.warmup; ++i) {
        if (!context->enqueueV3(stream)) throw Error("enqueueV3 failed during warm-up");
    }
    check(cudaStreamSynchronize(stream), "warm-up");
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    std::vector<double> samples;
    samples.reserve((size_t)options.iterations);
    for (int i = 0; i < options.iterations; ++i) {
        check(cudaEventRecord(start, stream), "cudaEventRecord");
        if (!context->enqueueV3(stream)) throw Error("enqueueV3 failed");
        check(cudaEventRecord(stop, stream), "cudaEventRecord");
        check(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float ms = 0.0f;
        check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        samples.push_back(ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);

    edge_trt::Stats s = edge_trt::summarize(samples);
    if (options.json) {
        printf("{\"engine\": \"%s\", \"precision\": \"%s\", \"tensorrt\": \"%s\", "
               "\"compute_capability\": \"%s\", \"iterations\": %zu, \"warmup\": %d, "
               "\"timing\": \"cuda events around enqueueV3 (GPU compute, no transfers)\", "
               "\"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p95_ms\": %.4f, \"p99_ms\": %.4f, "
               "\"mean_ms\": %.4f, \"std_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f}\n",
               choice.file.c_str(), choice.precision.c_str(), rt.tensorrt.c_str(),
               rt.compute_capability.c_str(), s.count, options.warmup, s.p50, s.p90, s.p95,
               s.p99, s.mean, s.std, s.min, s.max);
    } else {
        printf("engine   %s\nruntime  TensorRT %s, SM %s\n", choice.file.c_str(),
               rt.tensorrt.c_str(), rt.compute_capability.c_str());
        printf("timing   CUDA events around enqueueV3, %zu iterations after %d warm-up\n",
               s.count, options.warmup);
        printf("latency  p50 %.4f  p90 %.4f  p95 %.4f  p99 %.4f  mean %.4f  min %.4f  max %.4f ms\n",
               s.p50, s.p90, s.p95, s.p99, s.mean, s.min, s.max);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        edge_trt::Options options = edge_trt::parse_args(argc, argv);
        if (options.help) {
            printf("%s\n", edge_trt::usage().c_str());
            return 0;
        }
        return run(options);
    } catch (const edge_trt::UsageError& e) {
        fprintf(stderr, "edge_trt_run: error: %s\n%s\n", e.what(), edge_trt::usage().c_str());
        return 2;
    } catch (const std::exception& e) {
        fprintf(stderr, "edge_trt_run: error: %s\n", e.what());
        return 1;
    }
}
