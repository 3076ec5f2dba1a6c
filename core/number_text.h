/* The one text form of a number wherever a value becomes text: run labels,
 * parameter lists, result keys and values, figure labels. */
#ifndef ROUTESIM_NUMBER_TEXT_H
#define ROUTESIM_NUMBER_TEXT_H

#include <stddef.h>

/* Longest text rs_number_text writes, with its NUL ("-2.2250738585072014e-308"). */
#define RS_NUMBER_TEXT_MAX 32

/* The shortest decimal that reads back (strtod) as exactly v, laid out as
 * Python's repr lays out a float, less its ".0" on integers: plain digits
 * when 1e-4 <= |v| < 1e16 ("10", "0.001", "2.5", "9007199254740992"),
 * otherwise d.ddde+XX with at least two exponent digits ("1e-08", "1e+20",
 * "1.5e+300"). Zero keeps its sign ("0", "-0"); "nan", "inf", "-inf".
 * Writes at most size bytes (truncating like snprintf); returns the length
 * of the whole text. */
int rs_number_text(double v, char *buf, size_t size);

#endif
