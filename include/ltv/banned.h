/*
 * Functions that are easy to misuse, made compile errors (git's banned.h).
 * Use snprintf / xasprintf, parse_double / parse_int64, strtok_r.
 */
#ifndef LTV_BANNED_H
#define LTV_BANNED_H

#define BANNED(func) sorry_##func##_is_banned_in_ltvpipe

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef atof
#define atof(x) BANNED(atof)
#undef atol
#define atol(x) BANNED(atol)
#undef gets
#define gets(x) BANNED(gets)

#endif
