/* The modelled all-to-all time of a placement (modelled_cost.h) against a
 * direct computation of the documented rule and cases worked out by hand,
 * and the search policy: never slower than eplb on that cost, strictly
 * faster where a better plan exists, within the load bound, a valid
 * placement, the same plan for a seed whatever the thread count. */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/modelled_cost.h"
#include "metrics/placement/placement.h"

/* One byte per activation and 1 GB/s links: a layer's time is 2 x the
 * slowest device's max(sent, received) per link, in nanoseconds. */
static const rs_comm_model unit = {.hidden_size = 1, .bytes_per_element = 1, .nvlink_gbps = 1, .net_gbps = 1};

static rs_placement *plan_with(const char *policy, int L, const double *loads, rs_placement_layout lay,
                               double slack, uint64_t seed)
{
    const rs_placement_policy *p = rs_placement_policy_find(policy);
    ck_assert_msg(p != NULL, "no policy %s", policy);
    const rs_placement_stats stats = {.L = L, .E = lay.E, .loads = loads};
    const rs_placement_options options = {.layout = lay, .model = &unit, .balance_slack = slack, .seed = seed};
    rs_error err = {{0}};
    rs_placement *out = rs_placement_plan(p, &stats, &options, &err);
    ck_assert_msg(out != NULL, "%s: %s", policy, err.msg);
    return out;
}

static double seconds_of(const rs_placement *p, const double *loads, const rs_comm_model *m)
{
    const rs_placement_stats stats = {.L = p->L, .E = p->layout.E, .loads = loads};
    return rs_placement_modelled_seconds(p, &stats, m);
}

/* The layer's time and loads computed directly: every device s sends w_e / G
 * of each expert to the replica the rule local picks, read off log2phy. */
typedef struct direct {
    double seconds, max_served, max_planned;
} direct;

static direct direct_layer(const rs_placement *p, int l, const double *w, const rs_comm_model *m)
{
    const rs_placement_layout *lay = &p->layout;
    const int E = lay->E, G = lay->G, X = p->maxcnt, per_device = lay->S / G, per_node = G / lay->N;
    double sent[64][2] = {{0}}, received[64][2] = {{0}}, served[64] = {0}, planned[64] = {0};
    ck_assert_int_le(G, 64);
    for (int e = 0; e < E; e++) {
        const int32_t *slots = p->log2phy + ((size_t)l * E + e) * X;
        const int c = p->logcnt[(size_t)l * E + e];
        for (int r = 0; r < c; r++)
            planned[slots[r] / per_device] += w[e] / c;
        for (int s = 0; s < G; s++) {
            int target = -1, in_node[64], m_in = 0;
            for (int r = 0; r < c; r++) {
                const int d = slots[r] / per_device;
                if (d == s && target < 0)
                    target = d;
                if (d / per_node == s / per_node)
                    in_node[m_in++] = d;
            }
            if (target < 0)
                target = m_in > 0 ? in_node[s % m_in] : slots[s % c] / per_device;
            served[target] += w[e] / G;
            if (target != s) {
                const int far = target / per_node != s / per_node;
                sent[s][far] += w[e] / G;
                received[target][far] += w[e] / G;
            }
        }
    }
    direct out = {0};
    const double bytes = 2.0 * m->hidden_size * m->bytes_per_element;
    for (int d = 0; d < G; d++) {
        const double t = bytes * fmax(sent[d][0], received[d][0]) / (m->nvlink_gbps * 1e9) +
                         bytes * fmax(sent[d][1], received[d][1]) / (m->net_gbps * 1e9);
        out.seconds = fmax(out.seconds, t);
        out.max_served = fmax(out.max_served, served[d]);
        out.max_planned = fmax(out.max_planned, planned[d]);
    }
    out.seconds += m->latency_s;
    return out;
}

static void expect_close(double got, double want, const char *what)
{
    ck_assert_msg(fabs(got - want) <= 1e-9 * fmax(fabs(want), 1e-300), "%s: got %.17g, want %.17g", what, got, want);
}

/* Hand cases. Loads [10, 30], expert e on device e, one node: device 0 sends
 * 15 (expert 1) and receives 5, so 2 x 15 ns; in two nodes the same over the
 * network. Replicated: experts 0 on devices 0 and 2, 1 on devices 1 and 3,
 * 2 nodes of 2, loads [8, 8]: each device keeps its expert and sends the
 * other's 2 to its node's replica, 2 x 2 ns, nothing across nodes. */
START_TEST(modelled_cost_by_hand)
{
    const double w[2] = {10, 30};
    rs_error err = {{0}};
    rs_placement *p = rs_placement_new(1, &(rs_placement_layout){.E = 2, .S = 2, .G = 2, .N = 1, .groups = 1}, &err);
    p->phy2log[0] = 0;
    p->phy2log[1] = 1;
    ck_assert(rs_placement_finish(p, &err) == 0);
    expect_close(seconds_of(p, w, &unit), 30e-9, "one node");
    rs_comm_model slow_net = unit;
    slow_net.net_gbps = 0.5;
    slow_net.latency_s = 1e-6;
    expect_close(seconds_of(p, w, &slow_net), 30e-9 + 1e-6, "one node, latency");
    p->layout.N = 2;
    expect_close(seconds_of(p, w, &slow_net), 60e-9 + 1e-6, "two nodes, slower network");
    rs_placement_free(p);

    const double eq[2] = {8, 8};
    p = rs_placement_new(1, &(rs_placement_layout){.E = 2, .S = 4, .G = 4, .N = 2, .groups = 1}, &err);
    const int32_t rows[4] = {0, 1, 0, 1};
    memcpy(p->phy2log, rows, sizeof rows);
    ck_assert(rs_placement_finish(p, &err) == 0);
    expect_close(seconds_of(p, eq, &unit), 4e-9, "replicas, local in the node");
    /* no model: the documented defaults */
    ck_assert(seconds_of(p, eq, NULL) == seconds_of(p, eq, &rs_comm_model_defaults));
    expect_close(seconds_of(p, eq, NULL), 2.0 * 7168 * 2 * 2 / 160e9, "defaults");
    rs_placement_free(p);
}
END_TEST

static uint64_t next(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return *state >> 33;
}

/* A random layout (1 or more nodes, with or without replicas) and loads. */
static rs_placement_layout random_layout(uint64_t *rng)
{
    static const int devices[] = {1, 2, 4, 8};
    rs_placement_layout lay = {.G = devices[next(rng) % 4]};
    const int nodes[] = {1, 2, lay.G};
    lay.N = nodes[next(rng) % 3];
    if (lay.G % lay.N != 0)
        lay.N = 1;
    lay.S = lay.G * (1 + (int)(next(rng) % 6));
    lay.E = next(rng) % 3 == 0 ? lay.S : lay.S - (int)(next(rng) % (lay.S < 9 ? lay.S : 9));
    lay.groups = lay.E % 4 == 0 && next(rng) % 2 ? 4 : lay.E % 2 == 0 && next(rng) % 2 ? 2 : 1;
    return lay;
}

static void random_loads(uint64_t *rng, double *w, int n)
{
    const int kind = (int)(next(rng) % 5);
    for (int i = 0; i < n; i++) {
        const double u = (double)(next(rng) % 10000) / 10000.0;
        w[i] = kind == 0   ? floor(100 * u)
               : kind == 1 ? floor(exp(6 * u))
               : kind == 2 ? (next(rng) % 3 == 0 ? 0 : 1 + floor(50 * u))
               : kind == 3 ? 7
                           : (i % 7 == 0 ? 1000 : 1 + floor(10 * u));
    }
}

/* The modelled time equals the direct computation for every policy. */
START_TEST(modelled_cost_matches_direct_computation)
{
    uint64_t rng = 11;
    const char *policies[] = {"contiguous", "round_robin", "eplb", "search"};
    double w[3 * 48];
    rs_comm_model m = {.hidden_size = 7168, .bytes_per_element = 2, .nvlink_gbps = 160, .net_gbps = 50,
                       .latency_s = 3e-6};
    for (int c = 0; c < 60; c++) {
        const rs_placement_layout lay = random_layout(&rng);
        random_loads(&rng, w, 3 * lay.E);
        rs_placement *p = plan_with(policies[c % 4], 3, w, lay, 0.0, (uint64_t)c);
        double want = 0.0;
        for (int l = 0; l < 3; l++)
            want += direct_layer(p, l, w + l * lay.E, &m).seconds;
        expect_close(seconds_of(p, w, &m), want, policies[c % 4]);
        rs_placement_free(p);
    }
}
END_TEST

/* search against eplb on random loads and layouts, slack 0 and 0.2: never
 * slower in any layer, loads within eplb's x (1 + slack), valid. */
START_TEST(never_worse_than_eplb)
{
    uint64_t rng = 5;
    double w[4 * 48];
    int better = 0;
    for (int c = 0; c < 300; c++) {
        const rs_placement_layout lay = random_layout(&rng);
        random_loads(&rng, w, 4 * lay.E);
        const double slack = c % 2 ? 0.2 : 0.0;
        rs_placement *e = plan_with("eplb", 4, w, lay, slack, 0);
        rs_placement *s = plan_with("search", 4, w, lay, slack, (uint64_t)c);
        rs_error err = {{0}};
        rs_placement *again = rs_placement_copy(s, &err); /* the checks of rs_placement_finish, once more */
        ck_assert_msg(again != NULL, "case %d: %s", c, err.msg);
        rs_placement_free(again);
        for (int l = 0; l < 4; l++) {
            const direct de = direct_layer(e, l, w + l * lay.E, &unit), ds = direct_layer(s, l, w + l * lay.E, &unit);
            ck_assert_msg(ds.seconds <= de.seconds * (1 + 1e-12), "case %d layer %d: search %.17g > eplb %.17g", c, l,
                          ds.seconds, de.seconds);
            ck_assert_msg(ds.max_served <= de.max_served * (1 + slack) * (1 + 1e-12) + 1e-12,
                          "case %d layer %d: served load %g over eplb's %g x (1 + %g)", c, l, ds.max_served,
                          de.max_served, slack);
            ck_assert_msg(ds.max_planned <= de.max_planned * (1 + slack) * (1 + 1e-12) + 1e-12,
                          "case %d layer %d: planned load %g over eplb's %g x (1 + %g)", c, l, ds.max_planned,
                          de.max_planned, slack);
            better += ds.seconds < de.seconds * (1 - 1e-9);
        }
        ck_assert_msg(seconds_of(s, w, &unit) <= seconds_of(e, w, &unit), "case %d: total", c);
        rs_placement_free(e);
        rs_placement_free(s);
    }
    ck_assert_msg(better > 50, "search improved only %d layers of 1200", better);
}
END_TEST

/* Loads [96, 2, 2, 2], 2 replicas, 2 devices of 3 slots, one node. eplb
 * gives expert 0 three copies (32 each) and packs device 0 = {0, 0, 3},
 * device 1 = {0, 1, 2}: device 0 sends experts 1 and 2 (1 + 1), 2 x 2 ns.
 * Expert 0's third copy serves nobody (both devices hold one): given to
 * expert 1 (or 2), each device sends one expert (1), 2 x 1 ns, the best
 * there is, with served loads 51 and 51 (eplb's 50 and 52). */
START_TEST(strictly_better_with_replicas)
{
    const double w[4] = {96, 2, 2, 2};
    const rs_placement_layout lay = {.E = 4, .S = 6, .G = 2, .N = 1, .groups = 1};
    rs_placement *e = plan_with("eplb", 1, w, lay, 0.0, 0);
    ck_assert_int_eq(e->logcnt[0], 3);
    expect_close(seconds_of(e, w, &unit), 4e-9, "eplb");
    rs_placement *s = plan_with("search", 1, w, lay, 0.0, 0);
    expect_close(seconds_of(s, w, &unit), 2e-9, "search");
    ck_assert_int_eq(s->logcnt[0], 2); /* the third copy went to expert 1 or 2 (both as good) */
    ck_assert_int_eq(s->logcnt[1] + s->logcnt[2], 3);
    const direct d = direct_layer(s, 0, w, &unit);
    expect_close(d.max_served, 51, "served");
    rs_placement_free(e);
    rs_placement_free(s);
}
END_TEST

/* Without replicas the cost follows the device loads. Loads [3, 3, 2, 2, 2,
 * 0] on 2 devices of 3: eplb packs device 0 = {0, 2, 4} (7) and device 1 =
 * {1, 3, 5} (5); device 0 receives 3.5, 2 x 3.5 ns. Swapping experts 0 and
 * 3 gives 6 and 6: 2 x 3 ns. */
START_TEST(strictly_better_by_swaps)
{
    const double w[6] = {3, 3, 2, 2, 2, 0};
    const rs_placement_layout lay = {.E = 6, .S = 6, .G = 2, .N = 1, .groups = 1};
    rs_placement *e = plan_with("eplb", 1, w, lay, 0.0, 0);
    expect_close(seconds_of(e, w, &unit), 7e-9, "eplb");
    rs_placement *s = plan_with("search", 1, w, lay, 0.0, 0);
    expect_close(seconds_of(s, w, &unit), 6e-9, "search");
    expect_close(direct_layer(s, 0, w, &unit).max_planned, 6, "device loads");
    rs_placement_free(e);
    rs_placement_free(s);
}
END_TEST

/* The same seed gives the same plan, on 1 thread or 3. */
START_TEST(deterministic_for_a_seed)
{
    uint64_t rng = 99;
    const rs_placement_layout lay = {.E = 64, .S = 72, .G = 8, .N = 2, .groups = 8};
    double w[6 * 64];
    for (int i = 0; i < 6 * 64; i++)
        w[i] = 1 + (double)(next(&rng) % 1000);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    rs_placement *a = plan_with("search", 6, w, lay, 0.05, 7);
    omp_set_num_threads(3);
    rs_placement *b = plan_with("search", 6, w, lay, 0.05, 7);
    omp_set_num_threads(threads);
    ck_assert(memcmp(a->phy2log, b->phy2log, 6 * 72 * sizeof *a->phy2log) == 0);
    ck_assert(memcmp(a->rank, b->rank, 6 * 72 * sizeof *a->rank) == 0);
    rs_placement *e = plan_with("eplb", 6, w, lay, 0, 0);
    ck_assert(seconds_of(a, w, &unit) < seconds_of(e, w, &unit));
    rs_placement_free(a);
    rs_placement_free(b);
    rs_placement_free(e);
}
END_TEST

START_TEST(options_checked)
{
    const double w[4] = {1, 2, 3, 4};
    const rs_placement_stats stats = {.L = 1, .E = 4, .loads = w};
    rs_placement_options o = {.layout = {.E = 4, .S = 4, .G = 2, .N = 1, .groups = 1}, .balance_slack = -0.1};
    rs_error err = {{0}};
    const rs_placement_policy *search = rs_placement_policy_find("search");
    ck_assert_ptr_null(rs_placement_plan(search, &stats, &o, &err));
    ck_assert_msg(strstr(err.msg, "balance_slack must be a finite number >= 0 (got -0.1)"), "%s", err.msg);
    o.balance_slack = 0;
    o.iterations = -1;
    ck_assert_ptr_null(rs_placement_plan(search, &stats, &o, &err));
    ck_assert_msg(strstr(err.msg, "iterations must be >= 0"), "%s", err.msg);
    o.iterations = 0;
    rs_comm_model no_net = unit;
    no_net.net_gbps = 0;
    o.model = &no_net;
    ck_assert_ptr_null(rs_placement_plan(search, &stats, &o, &err));
    ck_assert_msg(strstr(err.msg, "placement search: the all-to-all model's net_gbps must be > 0 (got 0)"), "%s",
                  err.msg);
    o.model = NULL;
    const rs_placement_stats none = {.L = 1, .E = 4};
    ck_assert_ptr_null(rs_placement_plan(search, &none, &o, &err));
    ck_assert_msg(strstr(err.msg, "needs expert loads"), "%s", err.msg);
    /* without loads there is no modelled time */
    rs_placement *p = rs_placement_plan(search, &stats, &o, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    ck_assert(isnan(rs_placement_modelled_seconds(p, &none, NULL)));
    rs_placement_free(p);
}
END_TEST

Suite *placement_search_suite(void)
{
    Suite *s = suite_create("placement_search");
    TCase *tc = tcase_create("placement_search");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, modelled_cost_by_hand);
    tcase_add_test(tc, modelled_cost_matches_direct_computation);
    tcase_add_test(tc, never_worse_than_eplb);
    tcase_add_test(tc, strictly_better_with_replicas);
    tcase_add_test(tc, strictly_better_by_swaps);
    tcase_add_test(tc, deterministic_for_a_seed);
    tcase_add_test(tc, options_checked);
    suite_add_tcase(s, tc);
    return s;
}
