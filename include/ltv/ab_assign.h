/*
 * Deterministic A/B assignment of users to the arms of an experiment, and the
 * sample of users whose predictions are logged. Pure code.
 *
 * u(salt, id) = XXH64 of "salt" 0x1f "id" (seed 0), top 53 bits / 2^53: a
 * number in [0, 1) that is the same on every run and machine, uniform over
 * users, and independent between salts. A user goes to the candidate when
 * u(salt, id) < share, so raising the share only moves users from control to
 * candidate, never back. The logging sample uses the salt + "/log", so which
 * users are logged is independent of their arm.
 */
#ifndef LTV_AB_ASSIGN_H
#define LTV_AB_ASSIGN_H

double ab_unit(const char *salt, const char *user_id);

/* 1: the candidate arm (u < share); 0: control. */
int ab_is_candidate(const char *salt, const char *user_id, double share);

/* 1: this user's predictions are logged (an independent u < rate). */
int ab_is_logged(const char *salt, const char *user_id, double rate);

#endif
