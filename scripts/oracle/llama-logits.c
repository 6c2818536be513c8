// llama-logits: the logits the pinned libllama computes for one token sequence, for qforge's
// forward-pass tests (calibration/tests/forward_vs_llama.rs).
//
// usage: llama-logits MODEL.gguf TOKENS.txt OUT.bin [THREADS] [FIRST_OUTPUT]
//
// TOKENS.txt holds whitespace-separated token ids, evaluated as one sequence from position 0 in a
// fresh context with llama-perplexity's default context settings: n_ctx = n_tokens,
// n_batch = min(2048, n_ctx), n_ubatch = 512, flash attention "auto", F16 K and V caches.
// Logits are requested for positions FIRST_OUTPUT.. (default 0) and written to OUT.bin as
// little-endian f32, row-major, n_vocab values per position. Prints "n_vocab N" on stdout.
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet_log(enum ggml_log_level level, const char * text, void * user) {
    (void) user;
    if (level >= GGML_LOG_LEVEL_WARN || getenv("LLAMA_LOGITS_VERBOSE")) {
        fputs(text, stderr);
    }
}

int main(int argc, char ** argv) {
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s MODEL.gguf TOKENS.txt OUT.bin [THREADS] [FIRST_OUTPUT]\n", argv[0]);
        return 2;
    }
    const int n_threads = argc > 4 ? atoi(argv[4]) : 1;
    const int first_output = argc > 5 ? atoi(argv[5]) : 0;

    FILE * ft = fopen(argv[2], "r");
    if (!ft) { perror(argv[2]); return 1; }
    int cap = 1024, n_tokens = 0;
    llama_token * tokens = malloc(sizeof(llama_token) * cap);
    int id;
    while (fscanf(ft, "%d", &id) == 1) {
        if (n_tokens == cap) { cap *= 2; tokens = realloc(tokens, sizeof(llama_token) * cap); }
        tokens[n_tokens++] = id;
    }
    fclose(ft);
    if (n_tokens == 0 || first_output < 0 || first_output >= n_tokens) {
        fprintf(stderr, "no tokens, or first output %d outside 0..%d\n", first_output, n_tokens);
        return 1;
    }

    llama_log_set(quiet_log, NULL);
    llama_backend_init();

    struct llama_model_params mparams = llama_model_default_params();
    struct llama_model * model = llama_model_load_from_file(argv[1], mparams);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    // llama-perplexity's settings (common_params defaults, n_parallel = 1).
    struct llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = n_tokens;
    cparams.n_batch = n_tokens < 2048 ? n_tokens : 2048;
    cparams.n_ubatch = 512;
    cparams.n_seq_max = 1;
    cparams.n_threads = n_threads;
    cparams.n_threads_batch = n_threads;
    cparams.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
    cparams.type_k = GGML_TYPE_F16;
    cparams.type_v = GGML_TYPE_F16;
    struct llama_context * ctx = llama_init_from_model(model, cparams);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }

    FILE * fo = fopen(argv[3], "wb");
    if (!fo) { perror(argv[3]); return 1; }

    const int n_batch = (int) llama_n_batch(ctx);
    struct llama_batch batch = llama_batch_init(n_batch, 0, 1);
    for (int start = 0; start < n_tokens; start += n_batch) {
        const int n = n_tokens - start < n_batch ? n_tokens - start : n_batch;
        batch.n_tokens = n;
        int n_out = 0;
        for (int k = 0; k < n; ++k) {
            batch.token[k] = tokens[start + k];
            batch.pos[k] = start + k;
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = 0;
            batch.logits[k] = (start + k) >= first_output;
            n_out += batch.logits[k];
        }
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
        if (n_out > 0) {
            const float * logits = llama_get_logits(ctx);
            if (fwrite(logits, sizeof(float), (size_t) n_out * n_vocab, fo) != (size_t) n_out * n_vocab) {
                perror(argv[3]);
                return 1;
            }
        }
    }
    fclose(fo);
    printf("n_vocab %d\n", n_vocab);

    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    free(tokens);
    return 0;
}
