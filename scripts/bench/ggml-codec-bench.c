// ggml-codec-bench: single-thread throughput of the pinned ggml's quantizers, the calls
// llama-quantize makes per chunk (ggml_quantize_chunk, and ggml_fp16_to_fp32_row for F16 input).
//
//   ggml-codec-bench N_PER_ROW IN.f32 REPS TYPE[,TYPE...] [IMATRIX.f32]
//
// IN.f32 holds whole rows of little-endian f32. TYPE is a ggml type name (q4_K, iq4_xs, ...) or
// "f16->f32" (ggml_fp16_to_fp32_row on the input rounded to f16). Each type is run once to warm
// up (ggml_quantize_init, page faults), then REPS times; prints one line per type:
//
//   c TYPE imatrix|- N_WEIGHTS median_thread_cpu_s median_wall_s Mweights_per_s_cpu Mweights_per_s_wall
//
// Built by scripts/bench/codec-bench.sh against the static libggml-base.a of scripts/build-oracle.sh,
// so it runs exactly the code llama-quantize runs (same compiler flags, GGML_NATIVE).
#define _GNU_SOURCE
#include "ggml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char * msg) { fprintf(stderr, "ggml-codec-bench: %s\n", msg); exit(2); }

static void * slurp(const char * path, size_t * n) {
    FILE * f = fopen(path, "rb");
    if (!f) die("cannot open input");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void * buf = malloc(len > 0 ? (size_t) len : 1);
    if (len > 0 && fread(buf, 1, (size_t) len, f) != (size_t) len) die("short read");
    fclose(f);
    *n = (size_t) len;
    return buf;
}

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static int cmp_double(const void * a, const void * b) {
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double median(double * v, int n) {
    qsort(v, (size_t) n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static enum ggml_type type_by_name(const char * name) {
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const struct ggml_type_traits * tr = ggml_get_type_traits((enum ggml_type) t);
        if (tr->blck_size > 0 && tr->type_name && strcasecmp(tr->type_name, name) == 0) return (enum ggml_type) t;
    }
    fprintf(stderr, "ggml-codec-bench: unknown type %s\n", name);
    exit(2);
}

int main(int argc, char ** argv) {
    if (argc < 5) die("usage: ggml-codec-bench N_PER_ROW IN.f32 REPS TYPE[,TYPE...] [IMATRIX.f32]");
    int64_t n_per_row = atoll(argv[1]);
    size_t n_in;
    float * src = slurp(argv[2], &n_in);
    int reps = atoi(argv[3]);
    if (reps < 1) reps = 1;
    if (n_per_row <= 0 || n_in % (sizeof(float) * (size_t) n_per_row) != 0) die("input is not whole rows");
    int64_t n = (int64_t) (n_in / sizeof(float));
    int64_t nrows = n / n_per_row;
    float * imatrix = NULL;
    if (argc >= 6) {
        size_t n_im;
        imatrix = slurp(argv[5], &n_im);
        if (n_im != sizeof(float) * (size_t) n_per_row) die("imatrix must hold n_per_row floats");
    }
    double * cpu = calloc((size_t) reps, sizeof(double));
    double * wall = calloc((size_t) reps, sizeof(double));
    char * types = strdup(argv[4]);
    for (char * name = strtok(types, ","); name; name = strtok(NULL, ",")) {
        if (strcmp(name, "f16->f32") == 0) {
            ggml_fp16_t * h = malloc(sizeof(ggml_fp16_t) * (size_t) n);
            float * out = malloc(sizeof(float) * (size_t) n);
            ggml_fp32_to_fp16_row(src, h, n);
            for (int r = -1; r < reps; r++) {
                double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
                ggml_fp16_to_fp32_row(h, out, n);
                double c1 = now(CLOCK_THREAD_CPUTIME_ID), w1 = now(CLOCK_MONOTONIC);
                if (r >= 0) { cpu[r] = c1 - c0; wall[r] = w1 - w0; }
            }
            free(h);
            free(out);
        } else {
            enum ggml_type type = type_by_name(name);
            size_t row_size = ggml_row_size(type, n_per_row);
            void * dst = malloc((size_t) nrows * row_size);
            for (int r = -1; r < reps; r++) {
                double c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
                size_t written = ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix);
                double c1 = now(CLOCK_THREAD_CPUTIME_ID), w1 = now(CLOCK_MONOTONIC);
                if (written != (size_t) nrows * row_size) die("unexpected size from ggml_quantize_chunk");
                if (r >= 0) { cpu[r] = c1 - c0; wall[r] = w1 - w0; }
            }
            free(dst);
        }
        double mc = median(cpu, reps), mw = median(wall, reps);
        printf("c %s %s %lld %.6f %.6f %.2f %.2f\n", name, imatrix ? "imatrix" : "-", (long long) n, mc, mw,
               (double) n / mc / 1e6, (double) n / mw / 1e6);
        fflush(stdout);
    }
    return 0;
}
