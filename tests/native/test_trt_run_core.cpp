/* ctest: edge_trt_run's host part (JSON, arguments, engine choice, statistics) without
 * TensorRT. The manifest below has the shape edge.engine.build.record_engine writes. */
#include <string>
#include <vector>

#include "check.h"
#include "trt_run_core.h"

using edge_trt::Json;

namespace {

const char* kManifest = R"({
  "schema_version": 1,
  "model": {"arch": "mmnet", "spec": {
    "inputs": [{"name": "onset", "shape": [1, 3, 224, 224], "dtype": "float32"},
               {"name": "apex", "shape": [null, 3, 224, 224], "dtype": "float32"}],
    "outputs": [{"name": "logits", "shape": [1, 5], "dtype": "float32"}]}},
  "engines": [
    {"file": "engines/nvidia-jetson-agx-orin-sm87.trt10.3.0.26/engine.fp32.plan",
     "precision": "fp32",
     "key": {"device_model": "NVIDIA Jetson AGX Orin", "compute_capability": "8.7",
             "l4t": "36.4.0", "jetpack": null, "tensorrt": "10.3.0.26", "precision": "fp32"}},
    {"file": "engines/thor-sm110.trt11.4.1/engine.fp32.plan", "precision": "fp32",
     "key": {"compute_capability": "11.0", "tensorrt": "11.4.1", "precision": "fp32"}},
    {"file": "engines/x/engine.fp16.plan", "precision": "fp16",
     "key": {"compute_capability": null, "tensorrt": "10.3.0", "precision": "fp16"}}
  ],
  "note": "caf\u00e9 \ud83d\ude00 tab\t slash\/"
})";

edge_trt::Options options(const std::string& precision) {
    edge_trt::Options o;
    o.bundle = "/b";
    o.precision = precision;
    return o;
}

void test_json() {
    Json m = edge_trt::parse_json(kManifest, "manifest.json");
    CHECK(m.type == Json::Object);
    CHECK_EQ(m.get("schema_version")->number, 1.0);
    CHECK(m.get("missing") == nullptr);
    CHECK_EQ(m.get("engines")->items.size(), (size_t)3);
    CHECK(m.get("note")->text == "caf\xc3\xa9 \xf0\x9f\x98\x80 tab\t slash/");
    Json n = edge_trt::parse_json("[-1.5e3, 0, true, false, null, {}, []]", "x");
    CHECK_EQ(n.items[0].number, -1500.0);
    CHECK(n.items[2].boolean && !n.items[3].boolean && n.items[4].is_null());
    CHECK_THROWS(edge_trt::parse_json("{\"a\": 1,}", "m.json"), "m.json: invalid JSON at byte");
    CHECK_THROWS(edge_trt::parse_json("{\"a\" 1}", "m.json"), "expected ':'");
    CHECK_THROWS(edge_trt::parse_json("[1, 2", "m.json"), "expected ',' or ']'");
    CHECK_THROWS(edge_trt::parse_json("[1, ", "m.json"), "unexpected end of input");
    CHECK_THROWS(edge_trt::parse_json("\"abc", "m.json"), "unterminated string");
    CHECK_THROWS(edge_trt::parse_json("{} x", "m.json"), "unexpected text after");
    CHECK_THROWS(edge_trt::parse_json("-", "m.json"), "bad number");
    std::string deep(100, '[');
    CHECK_THROWS(edge_trt::parse_json(deep, "m.json"), "nesting deeper than 64");
}

void test_args() {
    const char* ok[] = {"edge_trt_run", "--bundle", "b", "--precision", "fp16", "--iterations",
                        "50", "--warmup", "0", "--json"};
    edge_trt::Options o = edge_trt::parse_args(10, ok);
    CHECK(o.bundle == "b" && o.precision == "fp16" && o.iterations == 50 && o.warmup == 0 &&
          o.json);
    const char* defaults[] = {"edge_trt_run", "--bundle", "b"};
    o = edge_trt::parse_args(3, defaults);
    CHECK(o.precision == "fp32" && o.iterations == 200 && o.warmup == 20 && !o.json);
    const char* help[] = {"edge_trt_run", "--help"};
    CHECK(edge_trt::parse_args(2, help).help);
    const char* none[] = {"edge_trt_run"};
    CHECK_THROWS(edge_trt::parse_args(1, none), "--bundle DIR is required");
    const char* bad_prec[] = {"edge_trt_run", "--bundle", "b", "--precision", "int4"};
    CHECK_THROWS(edge_trt::parse_args(5, bad_prec), "--precision must be fp32, fp16 or int8");
    const char* bad_iter[] = {"edge_trt_run", "--bundle", "b", "--iterations", "0"};
    CHECK_THROWS(edge_trt::parse_args(5, bad_iter), "--iterations needs an integer >= 1");
    const char* junk[] = {"edge_trt_run", "--bundle", "b", "--iterations", "5x"};
    CHECK_THROWS(edge_trt::parse_args(5, junk), "got '5x'");
    const char* missing[] = {"edge_trt_run", "--bundle"};
    CHECK_THROWS(edge_trt::parse_args(2, missing), "--bundle needs a value");
    const char* unknown[] = {"edge_trt_run", "--bundle", "b", "--fast"};
    CHECK_THROWS(edge_trt::parse_args(4, unknown), "unknown argument '--fast'");
}

void test_versions() {
    CHECK(edge_trt::trt_version_text(8502) == "8.5.2");
    CHECK(edge_trt::trt_version_text(8601) == "8.6.1");
    CHECK(edge_trt::trt_version_text(100300) == "10.3.0");
    CHECK(edge_trt::trt_version_text(101300) == "10.13.0");
    CHECK(edge_trt::trt_version_text(110401) == "11.4.1");
    CHECK(edge_trt::trt_version_text(0).empty());
    CHECK(edge_trt::versions_match("10.3.0.26", "10.3.0"));
    CHECK(!edge_trt::versions_match("10.3.0.26", "10.13.0"));
    CHECK(!edge_trt::versions_match("8.5.2", "8.6.1"));
    CHECK(!edge_trt::versions_match("", "8.6.1"));
}

void test_choose_engine() {
    Json m = edge_trt::parse_json(kManifest, "manifest.json");
    edge_trt::Runtime orin{"10.3.0", "8.7"};
    edge_trt::EngineChoice c = edge_trt::choose_engine(m, options("fp32"), orin);
    CHECK(c.file == "/b/engines/nvidia-jetson-agx-orin-sm87.trt10.3.0.26/engine.fp32.plan");
    CHECK(c.tensorrt == "10.3.0.26" && c.compute_capability == "8.7");
    CHECK_EQ(c.inputs.size(), (size_t)2);
    CHECK(c.inputs[1].name == "apex" && c.inputs[1].shape[0] == -1 && c.inputs[1].shape[3] == 224);
    CHECK(c.outputs[0].name == "logits" && c.outputs[0].shape[1] == 5);
    CHECK(c.warnings.empty());

    edge_trt::Runtime thor{"11.4.1", "11.0"};
    c = edge_trt::choose_engine(m, options("fp32"), thor);
    CHECK(c.file == "/b/engines/thor-sm110.trt11.4.1/engine.fp32.plan");

    edge_trt::Runtime xavier{"8.5.2", "7.2"};
    CHECK_THROWS(edge_trt::choose_engine(m, options("fp32"), xavier),
                 "no fp32 engine fits this device (TensorRT 8.5.2, SM 7.2)");
    CHECK_THROWS(edge_trt::choose_engine(m, options("fp32"), xavier),
                 "rebuild it here with: python3 -m edge.cli.engine --bundle /b --precision fp32");
    CHECK_THROWS(edge_trt::choose_engine(m, options("int8"), orin),
                 "/b/manifest.json: the bundle has no int8 engine");

    /* unknown compute capability in the key: accepted, with a warning */
    c = edge_trt::choose_engine(m, options("fp16"), orin);
    CHECK(c.file == "/b/engines/x/engine.fp16.plan");
    CHECK_EQ(c.warnings.size(), (size_t)1);

    edge_trt::Options pick = options("fp32");
    pick.engine = "engines/thor-sm110.trt11.4.1/engine.fp32.plan";
    CHECK_THROWS(edge_trt::choose_engine(m, pick, orin), "TensorRT 11.4.1 vs 10.3.0");
    pick.engine = "nope.plan";
    CHECK_THROWS(edge_trt::choose_engine(m, pick, orin), "no fp32 engine 'nope.plan'");

    Json empty = edge_trt::parse_json("{\"engines\": []}", "m");
    CHECK_THROWS(edge_trt::choose_engine(empty, options("fp32"), orin), "has no fp32 engine");
}

void test_summarize() {
    /* numpy.percentile([1..10], [50, 90, 95, 99]) = 5.5, 9.1, 9.55, 9.91 */
    std::vector<double> v = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    edge_trt::Stats s = edge_trt::summarize(v);
    CHECK_NEAR(s.p50, 5.5, 1e-12);
    CHECK_NEAR(s.p90, 9.1, 1e-12);
    CHECK_NEAR(s.p95, 9.55, 1e-12);
    CHECK_NEAR(s.p99, 9.91, 1e-12);
    CHECK_NEAR(s.mean, 5.5, 1e-12);
    CHECK_NEAR(s.std, 2.8722813232690143, 1e-12); /* population std, as numpy's default */
    CHECK_EQ(s.min, 1.0);
    CHECK_EQ(s.max, 10.0);
    CHECK_EQ(s.count, (size_t)10);
    s = edge_trt::summarize({4.0});
    CHECK_EQ(s.p99, 4.0);
    CHECK_THROWS(edge_trt::summarize({}), "no latency samples");
}

void test_paths() {
    CHECK(edge_trt::join_path("a", "b") == "a/b");
    CHECK(edge_trt::join_path("a/", "b") == "a/b");
    CHECK(edge_trt::join_path("a", "/abs") == "/abs");
    CHECK_THROWS(edge_trt::read_file("/nonexistent/manifest.json"),
                 "/nonexistent/manifest.json: cannot be read");
}

}  // namespace

int main() {
    test_json();
    test_args();
    test_versions();
    test_choose_engine();
    test_summarize();
    test_paths();
    return report("test_trt_run_core");
}
