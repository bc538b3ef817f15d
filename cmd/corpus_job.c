/* corpus_job.c - corpus commands over MPI ranks or shards (see corpus_job.h). */
#include "corpus_job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ------------------------------------------------------- failures --- */
static char g_msg[2048];
static int g_code = 0, g_follow = 0;

static void keep_failure(int code, const char *msg) {
    if (g_code) return;   /* the first failure is the cause */
    g_code = code ? code : SS_ERUNTIME;
    snprintf(g_msg, sizeof g_msg, "%s", msg);
}

int cjob_start(int *argc, char ***argv) {
    char err[SS_ERRLEN];
    if (ranks_init(argc, argv, err)) return cli_fail(SS_ERUNTIME, "%s", err);
    if (ranks_active() && ranks_size() > 1) cli_fail_sink = keep_failure;
    return SS_OK;
}

int cjob_agree(int rc) {
    if (!ranks_active() || ranks_size() == 1) return rc;
    if (!ranks_any(rc != 0)) return SS_OK;
    if (!rc) { g_follow = 1; return SS_ERUNTIME; }
    return rc;
}

int cjob_finish(int rc) {
    if (!ranks_active()) return rc;
    if (ranks_size() > 1) {
        int me = ranks_rank(), n = ranks_size();
        int who = ranks_min(rc && !g_follow ? me : n);
        if (who < n) {
            struct { int code; char msg[2048]; } f = {0};
            if (me == who) {
                f.code = g_code ? g_code : rc;
                snprintf(f.msg, sizeof f.msg, "%s", g_code ? g_msg : "failed");
            }
            ranks_bcast(&f, sizeof f, who);
            if (me == 0) fprintf(stderr, "saesteer %s: rank %d of %d: %s\n", cli_cmd_name, who, n, f.msg);
            rc = f.code ? f.code : SS_ERUNTIME;
        }
        cli_fail_sink = NULL;
    }
    ranks_finalize();
    return rc;
}

int cjob_shard_arg(const char *v, int *shard, int *shards) {
    char *end;
    errno = 0;
    long i = strtol(v, &end, 10);
    if (errno || end == v || *end != '/') goto bad;
    const char *s = end + 1;
    long n = strtol(s, &end, 10);
    if (errno || end == s || *end || n < 1 || n > 1000000 || i < 0 || i >= n) goto bad;
    *shard = (int)i;
    *shards = (int)n;
    return SS_OK;
bad:
    return cli_fail(SS_EINPUT, "--shard '%.40s': expected I/N with 0 <= I < N", v);
}

int cjob_nproc(const cjob *j) { return j->size > 1 ? j->size : j->shards > 0 ? j->shards : 1; }

/* ---------------------------------------------------------- setup --- */
int cjob_setup(cjob *j, int shard, int shards, const tokenizer *tok, const char *path) {
    memset(j, 0, sizeof *j);
    j->t0 = ss_now();
    j->rank = ranks_rank();
    j->size = ranks_size();
    j->shard = shard;
    j->shards = shards;
    char err[SS_ERRLEN];
    int rc = SS_OK;
    int64_t *bounds = NULL, *counts = NULL;
    if (j->size > 1 && shards > 0) {
        rc = cli_fail(SS_EINPUT, "--shard is for separate processes; under mpirun the ranks split the file");
        goto done;
    }
    j->parts = j->size > 1 ? j->size : shards > 0 ? shards : 1;
    j->me = j->size > 1 ? j->rank : shards > 0 ? shard : 0;
    bounds = calloc((size_t)j->parts + 1, sizeof *bounds);
    counts = calloc((size_t)j->parts, sizeof *counts);
    if (!bounds || !counts) { rc = cli_fail(SS_ERUNTIME, "out of memory"); goto done; }
    if ((rc = ss_corpus_bounds(path, j->parts, bounds, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    j->file_bytes = bounds[j->parts];
    j->byte_start = bounds[j->me];
    j->byte_end = bounds[j->me + 1];
    if (j->parts == 1) {
        ss_part whole = SS_PART_WHOLE;
        j->part = whole;
        goto done;
    }
    if (j->size > 1) {
        int64_t mine = 0;
        rc = ss_corpus_count(tok, path, j->byte_start, j->byte_end, &mine, err);
        if (rc) rc = cli_fail(rc, "%s", err);
        if ((rc = cjob_agree(rc))) goto done;
        if ((rc = ranks_allgather_i64(mine, counts, err))) { rc = cli_fail(rc, "%s", err); goto done; }
    } else {
        for (int p = 0; p <= j->me && !rc; p++)
            if ((rc = ss_corpus_count(tok, path, bounds[p], bounds[p + 1], &counts[p], err))) rc = cli_fail(rc, "%s", err);
        if (rc) goto done;
    }
    int64_t t = 0;
    for (int p = 0; p < j->me; p++) t += counts[p];
    j->part.byte_start = j->byte_start;
    j->part.tok_start = t;
    j->part.tok_end = t + counts[j->me];
done:
    free(bounds);
    free(counts);
    return cjob_agree(rc);
}

int cjob_reduce(cjob *j, ranks_pack_fn pack, ranks_merge_fn merge, void *ctx, int64_t *sent) {
    *sent = 0;
    if (j->size <= 1) return SS_OK;
    char err[SS_ERRLEN];
    int rc = ranks_reduce(pack, merge, ctx, sent, err);
    if (rc) rc = cli_fail(rc, "merging results: %s", err);
    return cjob_agree(rc);
}

/* ---------------------------------------------------- fingerprint --- */
static void hash_f(ss_sha256 *h, const float *p, size_t n) {
    uint64_t len = p ? n : 0;
    ss_sha256_update(h, &len, sizeof len);
    if (p) ss_sha256_update(h, p, n * sizeof(float));
}

/* a weight matrix as stored: dtype, layout and its n elements' bytes */
static void hash_m(ss_sha256 *h, const gpt2_mat *w, size_t n) {
    int tag[2] = {w->data ? w->dtype : -1, w->out_major};
    ss_sha256_update(h, tag, sizeof tag);
    if (w->data) ss_sha256_update(h, w->data, n * (w->dtype == ST_F32 ? 4 : 2));
}

static void hash_s(ss_sha256 *h, const char *s) { ss_sha256_update(h, s, strlen(s) + 1); }

void cjob_fingerprint(const char *cmd, const gpt2_model *m, const sae_dict *d, const char *opts, char hex[65]) {
    ss_sha256 h;
    ss_sha256_init(&h);
    char buf[512];
    hash_s(&h, cmd);
    const gpt2_config *c = &m->cfg;
    size_t C = (size_t)c->n_embd, V = (size_t)c->vocab_size, P = (size_t)c->n_positions;
    size_t F = (size_t)(c->n_inner > 0 ? c->n_inner : 4 * c->n_embd);
    snprintf(buf, sizeof buf, "%s L=%d C=%d H=%d V=%d P=%d F=%zu eps=%.9g bos=%d rot=%d par=%d", gpt2_arch_name(c->arch),
             c->n_layer, c->n_embd, c->n_head, c->vocab_size, c->n_positions, F, (double)c->ln_eps, c->bos_id,
             c->rotary_dim, c->parallel);
    hash_s(&h, buf);
    hash_m(&h, &m->wte, V * C);
    hash_m(&h, &m->unembed, V * C);
    hash_f(&h, m->unembed_b, V);
    hash_f(&h, m->wpe, P * C);
    for (int l = 0; l < c->n_layer; l++) {
        const gpt2_layer *L = &m->layers[l];
        hash_f(&h, L->ln1_w, C); hash_f(&h, L->ln1_b, C);
        hash_m(&h, &L->attn_w, C * 3 * C); hash_f(&h, L->attn_b, 3 * C);
        hash_m(&h, &L->q_w, C * C); hash_m(&h, &L->k_w, C * C); hash_m(&h, &L->v_w, C * C);
        hash_m(&h, &L->proj_w, C * C); hash_f(&h, L->proj_b, C);
        hash_f(&h, L->ln2_w, C); hash_f(&h, L->ln2_b, C);
        hash_m(&h, &L->fc_w, C * F); hash_f(&h, L->fc_b, F);
        hash_m(&h, &L->fcp_w, F * C); hash_f(&h, L->fcp_b, C);
    }
    hash_f(&h, m->lnf_w, C);
    hash_f(&h, m->lnf_b, C);
    if (d) {
        size_t I = (size_t)d->d_in, S = (size_t)d->d_sae;
        snprintf(buf, sizeof buf, "sae %s %s d_in=%d d_sae=%d b_dec_in=%d cww=%d bos=%d ctx=%d", sae_arch_name(d->arch),
                 d->hook_name, d->d_in, d->d_sae, d->apply_b_dec_to_input, d->center_writing_weights, d->prepend_bos,
                 d->context_size);
        hash_s(&h, buf);
        hash_f(&h, d->W_enc, I * S); hash_f(&h, d->W_dec, S * I);
        hash_f(&h, d->b_enc, S); hash_f(&h, d->b_dec, I);
        hash_f(&h, d->threshold, S); hash_f(&h, d->b_gate, S); hash_f(&h, d->b_mag, S); hash_f(&h, d->r_mag, S);
        for (int i = 0; d->labels && i < d->d_sae; i++) hash_s(&h, d->labels[i] ? d->labels[i] : "");
    }
    hash_s(&h, opts);
    ss_sha256_hex(&h, hex);
}

/* ----------------------------------------------------- part files --- */
#define PART_MAGIC "saesteer-part 1\n"

int cjob_write_part(const cjob *j, const char *path, cJSON *hdr, const ss_buf *payload) {
    char err[SS_ERRLEN], sha[65];
    ss_sha256 h;
    ss_sha256_init(&h);
    ss_sha256_update(&h, payload->data, payload->len);
    ss_sha256_hex(&h, sha);
    cJSON_AddStringToObject(hdr, "format", "saesteer-part");
    cJSON_AddNumberToObject(hdr, "version", CJOB_PART_VERSION);
    cJSON_AddNumberToObject(hdr, "shard", j->shard);
    cJSON_AddNumberToObject(hdr, "shards", j->shards);
    cJSON_AddNumberToObject(hdr, "file_bytes", (double)j->file_bytes);
    cJSON *br = cJSON_AddArrayToObject(hdr, "byte_range");
    cJSON_AddItemToArray(br, cJSON_CreateNumber((double)j->byte_start));
    cJSON_AddItemToArray(br, cJSON_CreateNumber((double)j->byte_end));
    cJSON *tr = cJSON_AddArrayToObject(hdr, "token_range");
    cJSON_AddItemToArray(tr, cJSON_CreateNumber((double)j->part.tok_start));
    cJSON_AddItemToArray(tr, cJSON_CreateNumber((double)(j->parts == 1 ? -1 : j->part.tok_end)));
    cJSON_AddStringToObject(hdr, "byte_order", "little-endian");
    cJSON_AddNumberToObject(hdr, "payload_bytes", (double)payload->len);
    cJSON_AddStringToObject(hdr, "payload_sha256", sha);
    char *js = cJSON_PrintUnformatted(hdr);
    if (!js) return cli_fail(SS_ERUNTIME, "out of memory");
    ss_outfile o;
    memset(&o, 0, sizeof o);
    int rc = ss_out_open(&o, path, err);
    if (rc) { free(js); return cli_fail(rc, "%s", err); }
    FILE *f = o.fp;
    fputs(PART_MAGIC, f);
    fputs(js, f);
    fputc('\n', f);
    free(js);
    if (payload->len) fwrite(payload->data, 1, payload->len, f);
    if (fflush(f) != 0 || ferror(f)) { ss_out_abort(&o); return cli_fail(SS_ERUNTIME, "%s: write failed (disk full?)", path); }
    if ((rc = ss_out_commit(&o, err))) { ss_out_abort(&o); return cli_fail(rc, "%s", err); }
    return SS_OK;
}

int cjob_read_part(const char *path, cJSON **hdr, unsigned char **payload, size_t *len) {
    *hdr = NULL;
    *payload = NULL;
    char *buf = NULL, err[SS_ERRLEN];
    size_t n = 0;
    int rc = ss_read_file(path, &buf, &n, err);
    if (rc) return cli_fail(rc, "%s", err);
    size_t ml = strlen(PART_MAGIC);
    char *nl = n > ml ? memchr(buf + ml, '\n', n - ml) : NULL;
    if (n < ml || memcmp(buf, PART_MAGIC, ml) || !nl) { free(buf); return cli_fail(SS_EINPUT, "%s: not a saesteer part file", path); }
    cJSON *j = cJSON_ParseWithLength(buf + ml, (size_t)(nl - (buf + ml)));
    cJSON *pb = j ? cJSON_GetObjectItemCaseSensitive(j, "payload_bytes") : NULL;
    const char *sha = j ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "payload_sha256")) : NULL;
    size_t off = (size_t)(nl + 1 - buf);
    if (!cJSON_IsObject(j) || !cJSON_IsNumber(pb) || !sha) {
        cJSON_Delete(j); free(buf);
        return cli_fail(SS_EINPUT, "%s: part header is not valid (payload_bytes, payload_sha256)", path);
    }
    cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    if (!cJSON_IsNumber(ver) || ver->valuedouble != CJOB_PART_VERSION) {
        cJSON_Delete(j); free(buf);
        return cli_fail(SS_EINPUT, "%s: part file version not supported (this saesteer reads version %d)", path, CJOB_PART_VERSION);
    }
    if (pb->valuedouble != (double)(n - off)) {
        double want = pb->valuedouble;   /* read before the tree is freed */
        cJSON_Delete(j); free(buf);
        return cli_fail(SS_EINPUT, "%s: truncated: %zu payload bytes, header says %.0f", path, n - off, want);
    }
    char got[65];
    ss_sha256 h;
    ss_sha256_init(&h);
    ss_sha256_update(&h, buf + off, n - off);
    ss_sha256_hex(&h, got);
    if (strcmp(got, sha)) { cJSON_Delete(j); free(buf); return cli_fail(SS_EINPUT, "%s: payload does not match its sha256 (corrupt)", path); }
    memmove(buf, buf + off, n - off);
    *hdr = j;
    *payload = (unsigned char *)buf;
    *len = n - off;
    return SS_OK;
}

static double num(cJSON *h, const char *k) {
    cJSON *x = cJSON_GetObjectItemCaseSensitive(h, k);
    return cJSON_IsNumber(x) ? x->valuedouble : -1;
}
static const char *str(cJSON *h, const char *k) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(h, k));
    return s ? s : "";
}
static double at(cJSON *h, const char *k, int i) {
    cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(h, k), i);
    return cJSON_IsNumber(x) ? x->valuedouble : -2;
}

int cjob_check_parts(cJSON **hdr, const char **paths, int n, int *order) {
    double shards = num(hdr[0], "shards");
    if (shards != n)
        return cli_fail(SS_EINPUT, "%s is shard %.0f of %.0f, but %d parts were given: give all of them", paths[0],
                        num(hdr[0], "shard"), shards, n);
    for (int k = 0; k < n; k++) order[k] = -1;
    for (int i = 0; i < n; i++) {
        const char *why = NULL;
        if (strcmp(str(hdr[i], "command"), str(hdr[0], "command"))) why = "another command";
        else if (strcmp(str(hdr[i], "fingerprint"), str(hdr[0], "fingerprint"))) why = "another model, dictionary or options (fingerprint differs)";
        else if (num(hdr[i], "shards") != shards) why = "another shard count";
        else if (num(hdr[i], "file_bytes") != num(hdr[0], "file_bytes")) why = "a text file of another size";
        else if (strcmp(str(hdr[i], "byte_order"), "little-endian")) why = "another byte order";
        if (why) return cli_fail(SS_EINPUT, "%s does not belong with %s: %s", paths[i], paths[0], why);
        double s = num(hdr[i], "shard");
        if (s < 0 || s >= n || s != (int)s) return cli_fail(SS_EINPUT, "%s: shard %.0f out of range", paths[i], s);
        if (order[(int)s] >= 0) return cli_fail(SS_EINPUT, "%s and %s are both shard %.0f", paths[order[(int)s]], paths[i], s);
        order[(int)s] = i;
    }
    for (int k = 0; k < n; k++) {
        cJSON *h = hdr[order[k]];
        double b0 = at(h, "byte_range", 0), t0 = at(h, "token_range", 0);
        double want_b = k ? at(hdr[order[k - 1]], "byte_range", 1) : 0, want_t = k ? at(hdr[order[k - 1]], "token_range", 1) : 0;
        if (b0 != want_b || t0 != want_t)
            return cli_fail(SS_EINPUT, "%s: shard %d starts at byte %.0f, token %.0f; the shard before ends at byte %.0f, token %.0f",
                            paths[order[k]], k, b0, t0, want_b, want_t);
    }
    if (at(hdr[order[n - 1]], "byte_range", 1) != num(hdr[0], "file_bytes"))
        return cli_fail(SS_EINPUT, "%s: the last shard does not end at the end of the text", paths[order[n - 1]]);
    return SS_OK;
}
