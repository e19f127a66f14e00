/* A few assertion macros for the ctest host tests (no test framework to install). */
#ifndef EDGE_TESTS_CHECK_H
#define EDGE_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>

#include <string>

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        ++g_checks;                                                              \
        if (!(cond)) {                                                           \
            ++g_failures;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                                    \
    do {                                                                                  \
        ++g_checks;                                                                       \
        auto va_ = (a);                                                                   \
        auto vb_ = (b);                                                                   \
        if (!(va_ == vb_)) {                                                              \
            ++g_failures;                                                                 \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s\n", __FILE__, __LINE__, #a, \
                    #b);                                                                  \
        }                                                                                 \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        ++g_checks;                                                                        \
        double va_ = (double)(a), vb_ = (double)(b);                                       \
        if (!(fabs(va_ - vb_) <= (tol))) {                                                 \
            ++g_failures;                                                                  \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g (tol %g)\n",   \
                    __FILE__, __LINE__, #a, va_, #b, vb_, (double)(tol));                  \
        }                                                                                  \
    } while (0)

#define CHECK_THROWS(expr, contains)                                                     \
    do {                                                                                 \
        ++g_checks;                                                                      \
        bool thrown_ = false;                                                            \
        try {                                                                            \
            (void)(expr);                                                                \
        } catch (const std::exception& e_) {                                             \
            thrown_ = std::string(e_.what()).find(contains) != std::string::npos;        \
            if (!thrown_)                                                                \
                fprintf(stderr, "%s:%d: message '%s' lacks '%s'\n", __FILE__, __LINE__,  \
                        e_.what(), contains);                                            \
        }                                                                                \
        if (!thrown_) {                                                                  \
            ++g_failures;                                                                \
            fprintf(stderr, "%s:%d: CHECK_THROWS failed: %s\n", __FILE__, __LINE__, #expr); \
        }                                                                                \
    } while (0)

static int report(const char* name) {
    printf("%s: %d checks, %d failures\n", name, g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}

#endif
