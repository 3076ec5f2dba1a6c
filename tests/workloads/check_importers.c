/* The importer table: every descriptor is complete, and `routesim import`
 * and config recipes list and dispatch through it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/config/config.h"
#include "tests/test_util.h"
#include "workloads/import/importer.h"

START_TEST(every_importer_is_complete)
{
    ck_assert_int_gt(rs_importer_count(), 0);
    ck_assert_ptr_null(rs_importer_at(rs_importer_count()));
    for (int f = 0; f < rs_importer_count(); f++) {
        const rs_importer_type *t = rs_importer_at(f);
        ck_assert_msg(t->name && t->name[0] && t->summary && t->summary[0] && t->input && t->help && t->run,
                      "importer %d is incomplete", f);
        ck_assert_ptr_eq(rs_importer_find(t->name), t);
        ck_assert_msg(t->num_options == 0 || (t->options && t->forms), "%s: options without forms", t->name);
        for (int i = 0; i < t->num_options; i++) {
            ck_assert_msg(t->options[i].help && t->options[i].help[0], "%s: %s has no help", t->name,
                          t->options[i].name);
            /* a flag takes no value, everything else names its value */
            ck_assert_msg((t->options[i].kind == RS_PARAM_BOOL) == (t->forms[i].value == NULL), "%s: %s", t->name,
                          t->options[i].name);
        }
        rs_params p;
        rs_error err = {{0}};
        ck_assert_msg(rs_importer_options_init(t, &p, t->name, &err) == 0, "%s: %s", t->name, err.msg);
        rs_params_free(&p);
    }
    ck_assert_ptr_null(rs_importer_find("nosuchformat"));
}
END_TEST

START_TEST(import_help_lists_the_table)
{
    char *o = NULL, *e = NULL;
    ck_assert_int_eq(rs_test_run_cli("import --help", &o, &e), 0);
    for (int f = 0; f < rs_importer_count(); f++) {
        const rs_importer_type *t = rs_importer_at(f);
        ck_assert_msg(strstr(o, t->name) && strstr(o, t->summary), "%s not listed:\n%s", t->name, o);
    }
    free(o), free(e);
    for (int f = 0; f < rs_importer_count(); f++) {
        const rs_importer_type *t = rs_importer_at(f);
        char args[128];
        snprintf(args, sizeof args, "import %s --help", t->name);
        ck_assert_int_eq(rs_test_run_cli(args, &o, &e), 0);
        for (int i = 0; i < t->num_options; i++) {
            char flag[80] = "--";
            snprintf(flag + 2, sizeof flag - 2, "%s", t->options[i].name);
            for (char *c = flag + 2; *c; c++)
                *c = *c == '_' ? '-' : *c;
            char help_start[41]; /* long help is wrapped */
            snprintf(help_start, sizeof help_start, "%s", t->options[i].help);
            ck_assert_msg(strstr(o, flag) && strstr(o, help_start), "%s: %s not described:\n%s", t->name, flag, o);
        }
        free(o), free(e);
    }
}
END_TEST

START_TEST(unknown_formats_list_the_table)
{
    char *o = NULL, *e = NULL;
    ck_assert_int_eq(rs_test_run_cli("import nosuchformat in.csv -o x.h5", &o, &e), 2);
    ck_assert_msg(strchr(e, '\n') == e + strlen(e) - 1, "more than one line: %s", e);
    for (int f = 0; f < rs_importer_count(); f++)
        ck_assert_msg(strstr(e, rs_importer_at(f)->name), "%s not in: %s", rs_importer_at(f)->name, e);
    free(o), free(e);

    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_int_ne(rs_config_parse(&cfg,
                                     "{\"traces\": [{\"path\": \"q.h5\", \"import\": {\"format\": \"nosuchformat\", "
                                     "\"input\": \"a.csv\"}}], \"routers\": [\"oracle\"]}",
                                     "exp.json", &err),
                     0);
    rs_config_free(&cfg);
    ck_assert_msg(strstr(err.msg, "exp.json: traces[0].import.format: expected "), "%s", err.msg);
    for (int f = 0; f < rs_importer_count(); f++) {
        const rs_importer_type *t = rs_importer_at(f);
        char quoted[80];
        snprintf(quoted, sizeof quoted, "\"%s\"", t->name);
        ck_assert_msg(!strstr(err.msg, quoted) == !(t->flags & RS_IMPORTER_CONFIG), "%s: %s", t->name, err.msg);
    }
}
END_TEST

/* A recipe's keys are the format's options; another format's option is
 * named as such, a key no format has as unknown. */
START_TEST(recipes_take_the_format_options)
{
    static const struct {
        const char *recipe, *message;
    } cases[] = {
        {"\"format\": \"routerbench\", \"input\": \"a.csv\", \"decontaminate\": true",
         "exp.json: traces[0].import: cost, decontaminate and domain_column are routellm options (not routerbench's)"},
        {"\"format\": \"routellm\", \"input\": \"a.csv\", \"colour\": 1",
         "exp.json: traces[0].import: unknown key 'colour' (known: format, input, models, cost, decontaminate, "
         "domain_column, gzip, max_quality)"},
        {"\"format\": \"routellm\", \"input\": \"a.csv\", \"decontaminate\": 1",
         "exp.json: traces[0].import.decontaminate: expected true or false"},
        {"\"format\": \"routellm\", \"input\": \"a.csv\", \"gzip\": 10",
         "exp.json: traces[0].import: parameter gzip=10 out of range [0, 9]"},
        {"\"format\": \"routellm\", \"input\": \"a.csv\", \"models\": 3",
         "exp.json: traces[0].import.models: expected a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[1024];
        snprintf(json, sizeof json, "{\"traces\": [{\"path\": \"q.h5\", \"import\": {%s}}], \"routers\": [\"oracle\"]}",
                 cases[i].recipe);
        rs_config cfg;
        rs_error err = {{0}};
        ck_assert_int_ne(rs_config_parse(&cfg, json, "exp.json", &err), 0);
        rs_config_free(&cfg);
        ck_assert_msg(strcmp(err.msg, cases[i].message) == 0, "got '%s', wanted '%s'", err.msg, cases[i].message);
    }
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_msg(rs_config_parse(&cfg,
                                  "{\"traces\": [{\"path\": \"q.h5\", \"import\": {\"format\": \"routerbench\", "
                                  "\"input\": \"a.csv\", \"models\": \"m2,m1\", \"gzip\": 4, \"max_quality\": 10}}], "
                                  "\"routers\": "
                                  "[\"oracle\"]}",
                                  "exp.json", &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(rs_param_str(&cfg.traces[0].imp.options, "models"), "m2,m1");
    ck_assert_int_eq(rs_param_int(&cfg.traces[0].imp.options, "gzip"), 4);
    ck_assert_double_eq(rs_param_float(&cfg.traces[0].imp.options, "max_quality"), 10);
    rs_config_free(&cfg);
}
END_TEST

Suite *importers_suite(void)
{
    Suite *s = suite_create("importers");
    TCase *tc = tcase_create("importers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_importer_is_complete);
    tcase_add_test(tc, import_help_lists_the_table);
    tcase_add_test(tc, unknown_formats_list_the_table);
    tcase_add_test(tc, recipes_take_the_format_options);
    suite_add_tcase(s, tc);
    return s;
}
