/* Host part of edge_trt_run, kept free of TensorRT and CUDA so ctest covers it anywhere:
 * a small JSON reader for the bundle manifest, command-line parsing, engine selection by the
 * manifest's engine key, and the latency summary. */
#ifndef EDGE_TRT_RUN_CORE_H
#define EDGE_TRT_RUN_CORE_H

#include <stdint.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace edge_trt {

/* A problem the user can fix; main() prints it as one line and exits 1 (2 for usage). */
struct Error : std::runtime_error {
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};
struct UsageError : Error {
    explicit UsageError(const std::string& what) : Error(what) {}
};

struct Json {
    enum Type { Null, Bool, Number, String, Array, Object };
    Type type = Null;
    bool boolean = false;
    double number = 0.0;
    std::string text;
    std::vector<Json> items;
    std::vector<std::pair<std::string, Json>> fields;

    /* Member `key` of an object, or nullptr (also for non-objects). */
    const Json* get(const std::string& key) const;
    bool is_null() const { return type == Null; }
};

/* Parses RFC 8259 JSON (UTF-8; \u escapes become UTF-8); throws Error naming the offset. */
Json parse_json(const std::string& text, const std::string& origin);

struct Options {
    std::string bundle;
    std::string precision = "fp32";
    std::string engine;    /* bundle-relative plan path; empty = choose by key */
    int iterations = 200;
    int warmup = 20;
    bool json = false;
    bool help = false;
};

Options parse_args(int argc, const char* const* argv);
std::string usage();

struct TensorInfo {
    std::string name;
    std::vector<int64_t> shape; /* -1 for a dynamic axis */
    std::string dtype;
};

struct EngineChoice {
    std::string file;      /* path of the plan */
    std::string precision;
    std::string tensorrt;  /* version it was built with */
    std::string compute_capability;
    std::vector<TensorInfo> inputs;
    std::vector<TensorInfo> outputs;
    std::vector<std::string> warnings;
};

/* The runtime's identity, compared with each engine's key. Empty fields are unknown. */
struct Runtime {
    std::string tensorrt;            /* "10.3.0" */
    std::string compute_capability;  /* "8.7" */
};

/* Picks the engine for options.precision that fits `runtime` (or options.engine), as
 * edge.engine.find_engine does; throws Error naming both sides otherwise. */
EngineChoice choose_engine(const Json& manifest, const Options& options, const Runtime& runtime);

/* getInferLibVersion() -> "M.m.p" (8.x encodes M*1000+m*100+p, 10.x and later M*10000+m*100+p). */
std::string trt_version_text(int encoded);

/* True when `built` (the key's "10.3.0.26") and `runtime` ("10.3.0") agree on every component
 * both spell out. */
bool versions_match(const std::string& built, const std::string& runtime);

struct Stats {
    double mean, std, min, max, p50, p90, p95, p99;
    size_t count;
};

/* numpy.percentile's linear interpolation, as benchmarks.latency.percentiles; throws on empty. */
Stats summarize(std::vector<double> samples_ms);

std::string read_file(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace edge_trt

#endif /* EDGE_TRT_RUN_CORE_H */
