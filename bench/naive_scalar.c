/* make bench: the naive scalar C loop routesim's throughput is compared
 * with. One token-layer at a time: softmax with expf, top-k by insertion
 * (ties to the lower index), load counts, batch loads, probability sums,
 * Shannon entropy and selected mass; no vectorisation, no threads. Reads
 * a bfloat16 trace with HDF5 in chunks of tokens, as routesim does.
 *
 *   naive_scalar TRACE K BATCH_TOKENS
 *
 * prints one JSON object: seconds, token_layers and the values of
 * load.maxvio, load.maxvio_batch, load.cv, load.aux_loss,
 * entropy.router_entropy and entropy.selected_mass. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CHUNK_TOKENS = 64, MAX_K = 64 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double maxvio(const int64_t *loads, int E)
{
    int64_t max = 0, sum = 0;
    for (int e = 0; e < E; e++) {
        sum += loads[e];
        max = loads[e] > max ? loads[e] : max;
    }
    return sum ? (double)max / ((double)sum / E) - 1.0 : NAN;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: naive_scalar TRACE K BATCH_TOKENS\n");
        return 2;
    }
    const int k = atoi(argv[2]), batch = atoi(argv[3]);
    hid_t file = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dset = file < 0 ? -1 : H5Dopen2(file, "/router/logits", H5P_DEFAULT);
    if (dset < 0) {
        fprintf(stderr, "naive_scalar: %s: cannot open /router/logits\n", argv[1]);
        return 1;
    }
    hid_t space = H5Dget_space(dset);
    hsize_t dims[3];
    if (H5Sget_simple_extent_ndims(space) != 3 || H5Sget_simple_extent_dims(space, dims, NULL) != 3 || k < 1 ||
        k > MAX_K || (hsize_t)k > dims[2] || batch < 1) {
        fprintf(stderr, "naive_scalar: %s: expected [T, L, E] logits and 1 <= k <= min(E, %d)\n", argv[1], MAX_K);
        return 1;
    }
    const int64_t T = (int64_t)dims[0];
    const int L = (int)dims[1], E = (int)dims[2];
    uint16_t *raw = malloc((size_t)CHUNK_TOKENS * L * E * sizeof *raw);
    float *z = malloc((size_t)E * sizeof *z), *p = malloc((size_t)E * sizeof *p);
    int64_t *loads = calloc((size_t)L * E, sizeof *loads), *batch_loads = calloc((size_t)L * E, sizeof *batch_loads);
    double *psum = calloc((size_t)L * E, sizeof *psum), *ent = calloc((size_t)L, sizeof *ent);
    double *mass = calloc((size_t)L, sizeof *mass), *vio_sum = calloc((size_t)L, sizeof *vio_sum);
    if (!raw || !z || !p || !loads || !batch_loads || !psum || !ent || !mass || !vio_sum) {
        fprintf(stderr, "naive_scalar: out of memory\n");
        return 1;
    }
    int64_t batches = 0, in_batch = 0;
    const double log_e = log((double)E);
    double start = now();
    for (int64_t t0 = 0; t0 < T; t0 += CHUNK_TOKENS) {
        hsize_t off[3] = {(hsize_t)t0, 0, 0}, cnt[3] = {(hsize_t)(T - t0 < CHUNK_TOKENS ? T - t0 : CHUNK_TOKENS),
                                                        (hsize_t)L, (hsize_t)E};
        hid_t mem = H5Screate_simple(3, cnt, NULL);
        H5Sselect_hyperslab(space, H5S_SELECT_SET, off, NULL, cnt, NULL);
        if (H5Dread(dset, H5T_NATIVE_UINT16, mem, space, H5P_DEFAULT, raw) < 0) {
            fprintf(stderr, "naive_scalar: %s: read failed at token %lld\n", argv[1], (long long)t0);
            return 1;
        }
        H5Sclose(mem);
        for (hsize_t t = 0; t < cnt[0]; t++) {
            for (int l = 0; l < L; l++) {
                const uint16_t *row = raw + ((size_t)t * L + l) * E;
                float max = -INFINITY;
                for (int e = 0; e < E; e++) {
                    uint32_t bits = (uint32_t)row[e] << 16;
                    memcpy(&z[e], &bits, sizeof bits);
                    max = z[e] > max ? z[e] : max;
                }
                double sum = 0.0, dot = 0.0;
                for (int e = 0; e < E; e++) {
                    p[e] = expf(z[e] - max);
                    sum += p[e];
                }
                for (int e = 0; e < E; e++) {
                    p[e] = (float)(p[e] / sum);
                    dot += (double)p[e] * z[e];
                    psum[(size_t)l * E + e] += p[e];
                }
                ent[l] += (max + log(sum) - dot) / log_e;
                int ids[MAX_K];
                float vals[MAX_K];
                int m = 0;
                for (int e = 0; e < E; e++) { /* insertion: strict > keeps the lower index first */
                    if (m == k && !(z[e] > vals[k - 1]))
                        continue;
                    int pos = m < k ? m++ : k - 1;
                    for (; pos > 0 && z[e] > vals[pos - 1]; pos--) {
                        vals[pos] = vals[pos - 1];
                        ids[pos] = ids[pos - 1];
                    }
                    vals[pos] = z[e];
                    ids[pos] = e;
                }
                for (int j = 0; j < k; j++) {
                    mass[l] += p[ids[j]];
                    loads[(size_t)l * E + ids[j]]++;
                    batch_loads[(size_t)l * E + ids[j]]++;
                }
            }
            if (++in_batch == batch) {
                for (int l = 0; l < L; l++)
                    vio_sum[l] += maxvio(batch_loads + (size_t)l * E, E);
                memset(batch_loads, 0, (size_t)L * E * sizeof *batch_loads);
                batches++;
                in_batch = 0;
            }
        }
    }
    if (in_batch) { /* the last, short batch counts as one */
        for (int l = 0; l < L; l++)
            vio_sum[l] += maxvio(batch_loads + (size_t)l * E, E);
        batches++;
    }
    double seconds = now() - start;
    double v_maxvio = 0, v_batch = 0, v_cv = 0, v_aux = 0, v_ent = 0, v_mass = 0;
    for (int l = 0; l < L; l++) {
        const int64_t *ld = loads + (size_t)l * E;
        double total = 0, var = 0, aux = 0;
        for (int e = 0; e < E; e++)
            total += (double)ld[e];
        double mean = total / E;
        for (int e = 0; e < E; e++) {
            var += ((double)ld[e] - mean) * ((double)ld[e] - mean);
            aux += (double)ld[e] / total * psum[(size_t)l * E + e] / (double)T;
        }
        v_maxvio += maxvio(ld, E) / L;
        v_batch += vio_sum[l] / (double)batches / L;
        v_cv += sqrt(var / E) / mean / L;
        v_aux += E * aux / L;
        v_ent += ent[l] / (double)T / L;
        v_mass += mass[l] / (double)T / L;
    }
    printf("{\"seconds\": %.9g, \"token_layers\": %lld, \"load.maxvio\": %.17g, \"load.maxvio_batch\": %.17g, "
           "\"load.cv\": %.17g, \"load.aux_loss\": %.17g, \"entropy.router_entropy\": %.17g, "
           "\"entropy.selected_mass\": %.17g}\n",
           seconds, (long long)(T * L), v_maxvio, v_batch, v_cv, v_aux, v_ent, v_mass);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(file);
    free(raw);
    free(z);
    free(p);
    free(loads);
    free(batch_loads);
    free(psum);
    free(ent);
    free(mass);
    free(vio_sum);
    return 0;
}
