/* Manifest reading, argument parsing and statistics for edge_trt_run (no TensorRT here). */
#include "trt_run_core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace edge_trt {

const Json* Json::get(const std::string& key) const {
    if (type != Object) return nullptr;
    for (const auto& field : fields) {
        if (field.first == key) return &field.second;
    }
    return nullptr;
}

namespace {

class Parser {
  public:
    Parser(const std::string& text, const std::string& origin) : s_(text), origin_(origin) {}

    Json document() {
        Json value = parse_value(0);
        skip_space();
        if (pos_ != s_.size()) error("unexpected text after the JSON value");
        return value;
    }

  private:
    const std::string& s_;
    std::string origin_;
    size_t pos_ = 0;

    [[noreturn]] void error(const std::string& what) const {
        throw Error(origin_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " + what);
    }

    void skip_space() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
            ++pos_;
        }
    }

    bool consume(const char* word) {
        size_t n = strlen_(word);
        if (s_.compare(pos_, n, word) == 0) {
            pos_ += n;
            return true;
        }
        return false;
    }

    static size_t strlen_(const char* w) {
        size_t n = 0;
        while (w[n] != '\0') ++n;
        return n;
    }

    Json parse_value(int depth) {
        if (depth > 64) error("nesting deeper than 64");
        skip_space();
        if (pos_ >= s_.size()) error("unexpected end of input");
        Json v;
        char c = s_[pos_];
        if (c == '{') {
            v.type = Json::Object;
            ++pos_;
            skip_space();
            if (pos_ < s_.size() && s_[pos_] == '}') {
                ++pos_;
                return v;
            }
            for (;;) {
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != '"') error("expected a string key");
                std::string key = parse_string();
                skip_space();
                if (pos_ >= s_.size() || s_[pos_] != ':') error("expected ':'");
                ++pos_;
                v.fields.emplace_back(key, parse_value(depth + 1));
                skip_space();
                if (pos_ < s_.size() && s_[pos_] == ',') {
                    ++pos_;
                    continue;
                }
                if (pos_ < s_.size() && s_[pos_] == '}') {
                    ++pos_;
                    return v;
                }
                error("expected ',' or '}'");
            }
        }
        if (c == '[') {
            v.type = Json::Array;
            ++pos_;
            skip_space();
            if (pos_ < s_.size() && s_[pos_] == ']') {
                ++pos_;
                return v;
            }
            for (;;) {
                v.items.push_back(parse_value(depth + 1));
                skip_space();
                if (pos_ < s_.size() && s_[pos_] == ',') {
                    ++pos_;
                    continue;
                }
                if (pos_ < s_.size() && s_[pos_] == ']') {
                    ++pos_;
                    return v;
                }
                error("expected ',' or ']'");
            }
        }
        if (c == '"') {
            v.type = Json::String;
            v.text = parse_string();
            return v;
        }
        if (consume("true")) {
            v.type = Json::Bool;
            v.boolean = true;
            return v;
        }
        if (consume("false")) {
            v.type = Json::Bool;
            return v;
        }
        if (consume("null")) return v;
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = pos_;
            if (s_[pos_] == '-') ++pos_;
            while (pos_ < s_.size() && ((s_[pos_] >= '0' && s_[pos_] <= '9') || s_[pos_] == '.' ||
                                        s_[pos_] == 'e' || s_[pos_] == 'E' || s_[pos_] == '+' ||
                                        s_[pos_] == '-')) {
                ++pos_;
            }
            std::string number = s_.substr(start, pos_ - start);
            char* end = nullptr;
            v.number = strtod(number.c_str(), &end);
            if (end == nullptr || *end != '\0' || number == "-") {
                pos_ = start;
                error("bad number '" + number + "'");
            }
            v.type = Json::Number;
            return v;
        }
        error(std::string("unexpected character '") + c + "'");
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += (char)cp;
        } else if (cp < 0x800) {
            out += (char)(0xC0 | (cp >> 6));
            out += (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += (char)(0xE0 | (cp >> 12));
            out += (char)(0x80 | ((cp >> 6) & 0x3F));
            out += (char)(0x80 | (cp & 0x3F));
        } else {
            out += (char)(0xF0 | (cp >> 18));
            out += (char)(0x80 | ((cp >> 12) & 0x3F));
            out += (char)(0x80 | ((cp >> 6) & 0x3F));
            out += (char)(0x80 | (cp & 0x3F));
        }
    }

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) error("truncated \\u escape");
        unsigned cp = 0;
        for (int i = 0; i < 4; ++i) {
            char h = s_[pos_++];
            cp <<= 4;
            if (h >= '0' && h <= '9') cp |= (unsigned)(h - '0');
            else if (h >= 'a' && h <= 'f') cp |= (unsigned)(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') cp |= (unsigned)(h - 'A' + 10);
            else error("bad \\u escape");
        }
        return cp;
    }

    std::string parse_string() {
        ++pos_; /* opening quote */
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) error("unterminated string");
            char c = s_[pos_++];
            if (c == '"') return out;
            if ((unsigned char)c < 0x20) error("control character in a string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) error("unterminated escape");
            char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF && s_.compare(pos_, 2, "\\u") == 0) {
                        pos_ += 2;
                        unsigned low = hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: error(std::string("bad escape '\\") + e + "'");
            }
        }
    }
};

int parse_count(const std::string& flag, const char* value, int minimum) {
    char* end = nullptr;
    long v = strtol(value, &end, 10);
    if (end == value || *end != '\0' || v < minimum || v > 10000000) {
        throw UsageError(flag + " needs an integer >= " + std::to_string(minimum) + ", got '" +
                         value + "'");
    }
    return (int)v;
}

std::string string_field(const Json& obj, const char* key) {
    const Json* v = obj.get(key);
    return v != nullptr && v->type == Json::String ? v->text : std::string();
}

std::vector<TensorInfo> tensors(const Json* list) {
    std::vector<TensorInfo> out;
    if (list == nullptr || list->type != Json::Array) return out;
    for (const Json& item : list->items) {
        TensorInfo t;
        t.name = string_field(item, "name");
        t.dtype = string_field(item, "dtype");
        const Json* shape = item.get("shape");
        if (shape != nullptr && shape->type == Json::Array) {
            for (const Json& d : shape->items) {
                t.shape.push_back(d.type == Json::Number ? (int64_t)d.number : -1);
            }
        }
        out.push_back(t);
    }
    return out;
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, sep)) parts.push_back(part);
    return parts;
}

}  // namespace

Json parse_json(const std::string& text, const std::string& origin) {
    return Parser(text, origin).document();
}

std::string usage() {
    return "usage: edge_trt_run --bundle DIR [--precision fp32|fp16|int8] [--engine FILE]\n"
           "                    [--iterations N] [--warmup N] [--json]\n"
           "Runs the bundle's TensorRT engine for this device and prints latency percentiles\n"
           "(CUDA events around enqueueV3, after warm-up).";
}

Options parse_args(int argc, const char* const* argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const std::string& flag) -> const char* {
            if (i + 1 >= argc) throw UsageError(flag + " needs a value");
            return argv[++i];
        };
        if (a == "-h" || a == "--help") {
            o.help = true;
        } else if (a == "--bundle") {
            o.bundle = value(a);
        } else if (a == "--precision") {
            o.precision = value(a);
            if (o.precision != "fp32" && o.precision != "fp16" && o.precision != "int8") {
                throw UsageError("--precision must be fp32, fp16 or int8, not '" + o.precision + "'");
            }
        } else if (a == "--engine") {
            o.engine = value(a);
        } else if (a == "--iterations") {
            o.iterations = parse_count(a, value(a), 1);
        } else if (a == "--warmup") {
            o.warmup = parse_count(a, value(a), 0);
        } else if (a == "--json") {
            o.json = true;
        } else {
            throw UsageError("unknown argument '" + a + "'");
        }
    }
    if (!o.help && o.bundle.empty()) throw UsageError("--bundle DIR is required");
    return o;
}

std::string trt_version_text(int encoded) {
    if (encoded <= 0) return std::string();
    int major, rest;
    if (encoded >= 100000) {
        major = encoded / 10000;
        rest = encoded % 10000;
    } else {
        major = encoded / 1000;
        rest = encoded % 1000;
    }
    return std::to_string(major) + "." + std::to_string(rest / 100) + "." +
           std::to_string(rest % 100);
}

bool versions_match(const std::string& built, const std::string& runtime) {
    std::vector<std::string> a = split(built, '.'), b = split(runtime, '.');
    size_t n = std::min(a.size(), b.size());
    if (n == 0) return false;
    for (size_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) return false;
    }
    return true;
}

EngineChoice choose_engine(const Json& manifest, const Options& options, const Runtime& runtime) {
    const std::string& dir = options.bundle;
    std::string rebuild = "python3 -m edge.cli.engine --bundle " + dir + " --precision " +
                          options.precision;
    const Json* engines = manifest.get("engines");
    std::vector<const Json*> candidates;
    if (engines != nullptr && engines->type == Json::Array) {
        for (const Json& e : engines->items) {
            if (string_field(e, "precision") != options.precision) continue;
            if (!options.engine.empty() && string_field(e, "file") != options.engine) continue;
            candidates.push_back(&e);
        }
    }
    if (candidates.empty()) {
        std::string what = options.engine.empty() ? "no " + options.precision + " engine"
                                                  : "no " + options.precision + " engine '" +
                                                        options.engine + "'";
        throw Error(dir + "/manifest.json: the bundle has " + what +
                    "; build it on this device with: " + rebuild);
    }
    std::vector<std::string> reasons;
    for (const Json* e : candidates) {
        const Json* key = e->get("key");
        std::string built_trt = key != nullptr ? string_field(*key, "tensorrt") : std::string();
        std::string built_cc =
            key != nullptr ? string_field(*key, "compute_capability") : std::string();
        std::vector<std::string> problems;
        std::vector<std::string> warnings;
        if (runtime.tensorrt.empty() || built_trt.empty()) {
            warnings.push_back("TensorRT version unknown on one side; not compared");
        } else if (!versions_match(built_trt, runtime.tensorrt)) {
            problems.push_back("TensorRT " + built_trt + " vs " + runtime.tensorrt);
        }
        if (runtime.compute_capability.empty() || built_cc.empty()) {
            warnings.push_back("compute capability unknown on one side; not compared");
        } else if (built_cc != runtime.compute_capability) {
            problems.push_back("compute_capability " + built_cc + " vs " +
                               runtime.compute_capability);
        }
        std::string file = string_field(*e, "file");
        if (!problems.empty()) {
            std::string joined;
            for (const auto& p : problems) joined += (joined.empty() ? "" : ", ") + p;
            reasons.push_back(file + " (" + joined + ")");
            continue;
        }
        EngineChoice c;
        c.file = join_path(dir, file);
        c.precision = options.precision;
        c.tensorrt = built_trt;
        c.compute_capability = built_cc;
        c.warnings = warnings;
        const Json* model = manifest.get("model");
        const Json* spec = model != nullptr ? model->get("spec") : nullptr;
        if (spec != nullptr) {
            c.inputs = tensors(spec->get("inputs"));
            c.outputs = tensors(spec->get("outputs"));
        }
        return c;
    }
    std::string joined;
    for (const auto& r : reasons) joined += (joined.empty() ? "" : "; ") + r;
    throw Error(dir + ": no " + options.precision + " engine fits this device (TensorRT " +
                (runtime.tensorrt.empty() ? "unknown" : runtime.tensorrt) + ", SM " +
                (runtime.compute_capability.empty() ? "unknown" : runtime.compute_capability) +
                "): " + joined + "; rebuild it here with: " + rebuild);
}

Stats summarize(std::vector<double> samples) {
    if (samples.empty()) throw Error("no latency samples to summarize");
    std::sort(samples.begin(), samples.end());
    size_t n = samples.size();
    auto pct = [&](double q) {
        double rank = q / 100.0 * (double)(n - 1);
        size_t lo = (size_t)floor(rank);
        size_t hi = std::min(lo + 1, n - 1);
        double frac = rank - (double)lo;
        return samples[lo] + (samples[hi] - samples[lo]) * frac;
    };
    double sum = 0.0;
    for (double v : samples) sum += v;
    double mean = sum / (double)n;
    double var = 0.0;
    for (double v : samples) var += (v - mean) * (v - mean);
    Stats s;
    s.mean = mean;
    s.std = sqrt(var / (double)n);
    s.min = samples.front();
    s.max = samples.back();
    s.p50 = pct(50);
    s.p90 = pct(90);
    s.p95 = pct(95);
    s.p99 = pct(99);
    s.count = n;
    return s;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot be read");
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string join_path(const std::string& dir, const std::string& name) {
    if (dir.empty() || (!name.empty() && name[0] == '/')) return name;
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace edge_trt
