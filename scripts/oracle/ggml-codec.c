// ggml-codec: runs the pinned ggml's own block codecs on raw little-endian buffers, so that
// qforge's codecs can be compared with them byte for byte.
//
//   ggml-codec quantize   TYPE N_PER_ROW IN.f32 OUT.bin [IMATRIX.f32]
//   ggml-codec dequantize TYPE IN.bin OUT.f32
//
// TYPE is a ggml type name (q4_K, iq4_xs, ...). quantize calls ggml_quantize_chunk on all rows
// (exactly what llama-quantize calls) and ggml_validate_row_data on the result.
#include "ggml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char * msg) { fprintf(stderr, "ggml-codec: %s\n", msg); exit(2); }

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

static void spit(const char * path, const void * data, size_t n) {
    FILE * f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) die("cannot write output");
    fclose(f);
}

static enum ggml_type type_by_name(const char * name) {
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        const struct ggml_type_traits * tr = ggml_get_type_traits((enum ggml_type) t);
        if (tr->blck_size > 0 && tr->type_name && strcmp(tr->type_name, name) == 0) return (enum ggml_type) t;
    }
    die("unknown type");
    return GGML_TYPE_COUNT;
}

int main(int argc, char ** argv) {
    if (argc >= 6 && strcmp(argv[1], "quantize") == 0) {
        enum ggml_type type = type_by_name(argv[2]);
        int64_t n_per_row = atoll(argv[3]);
        size_t n_in;
        float * src = slurp(argv[4], &n_in);
        if (n_per_row <= 0 || n_in % (sizeof(float) * (size_t) n_per_row) != 0) die("input is not whole rows");
        int64_t nrows = (int64_t) (n_in / sizeof(float)) / n_per_row;
        float * imatrix = NULL;
        if (argc >= 7) {
            size_t n_im;
            imatrix = slurp(argv[6], &n_im);
            if (n_im != sizeof(float) * (size_t) n_per_row) die("imatrix must hold n_per_row floats");
        }
        size_t row_size = ggml_row_size(type, n_per_row);
        void * dst = calloc((size_t) nrows, row_size);
        size_t written = ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix);
        if (written != (size_t) nrows * row_size) die("unexpected size from ggml_quantize_chunk");
        if (!ggml_validate_row_data(type, dst, written)) die("quantized data validation failed");
        spit(argv[5], dst, written);
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "dequantize") == 0) {
        enum ggml_type type = type_by_name(argv[2]);
        const struct ggml_type_traits * tr = ggml_get_type_traits(type);
        size_t n_in;
        void * src = slurp(argv[3], &n_in);
        if (n_in % tr->type_size != 0) die("input is not whole blocks");
        int64_t n = (int64_t) (n_in / tr->type_size) * tr->blck_size;
        float * dst = malloc(sizeof(float) * (size_t) (n > 0 ? n : 1));
        if (type == GGML_TYPE_F32) memcpy(dst, src, n_in);
        else if (!tr->to_float) die("type has no to_float");
        else tr->to_float(src, dst, n);
        spit(argv[4], dst, sizeof(float) * (size_t) n);
        return 0;
    }
    fprintf(stderr, "usage: ggml-codec quantize TYPE N_PER_ROW IN.f32 OUT.bin [IMATRIX.f32]\n"
                    "       ggml-codec dequantize TYPE IN.bin OUT.f32\n");
    return 2;
}
