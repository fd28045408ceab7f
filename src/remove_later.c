/*
 * remove_later: `rm` in the background (contract in include/ltv/remove_later.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ltv/common.h"
#include "ltv/remove_later.h"

/*
 * Its standard streams are /dev/null: a caller reading our output through
 * a pipe gets its end of file when we exit, not when rm does. posix_spawn,
 * not fork: a fork copied the page tables of score's heap (about 300 MB on
 * huge pages at 1,000,000 users), and each page the caller wrote after it
 * (its frees before it exits) was split from its huge page and copied, with
 * a TLB flush on both cores: 53-61 ms of the main thread after the commit
 * (perf under chrt, 3 runs; 7-8 ms with no file to replace). posix_spawn
 * shares the memory until the exec. The child gets no descriptor of ours
 * but the three (rm outlives us: it must not hold a log or a lock), default
 * signal dispositions and mask, and a fixed PATH; /bin/rm by its path.
 */
int remove_later(char *const *paths, size_t n)
{
	static const char script[] = "/bin/rm -f -- \"$@\" &";
	static char *const env[] = { (char *)"PATH=/usr/bin:/bin", NULL };
	char **argv = xcalloc(n + 5, sizeof(*argv));
	posix_spawn_file_actions_t io;
	posix_spawnattr_t attr;
	sigset_t none, all;
	size_t k = 0;
	pid_t pid;
	int ret = -1;

	argv[k++] = (char *)"sh";
	argv[k++] = (char *)"-c";
	argv[k++] = (char *)script;
	argv[k++] = (char *)"sh"; /* $0; the paths are $@ */
	for (size_t i = 0; i < n; i++)
		argv[k++] = paths[i];
	sigemptyset(&none);
	sigfillset(&all);
	if (posix_spawn_file_actions_init(&io) != 0) {
		free(argv);
		return -1;
	}
	if (posix_spawnattr_init(&attr) == 0) {
		if (posix_spawn_file_actions_addopen(&io, STDIN_FILENO, "/dev/null", O_RDONLY, 0) == 0 &&
		    posix_spawn_file_actions_addopen(&io, STDOUT_FILENO, "/dev/null", O_WRONLY, 0) == 0 &&
		    posix_spawn_file_actions_addopen(&io, STDERR_FILENO, "/dev/null", O_WRONLY, 0) == 0 &&
		    posix_spawn_file_actions_addclosefrom_np(&io, STDERR_FILENO + 1) == 0 &&
		    posix_spawnattr_setsigmask(&attr, &none) == 0 &&
		    posix_spawnattr_setsigdefault(&attr, &all) == 0 &&
		    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) == 0 &&
		    posix_spawn(&pid, "/bin/sh", &io, &attr, argv, env) == 0) {
			int status;
			pid_t got;

			while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
				;
			ret = got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
		}
		posix_spawnattr_destroy(&attr);
	}
	posix_spawn_file_actions_destroy(&io);
	free(argv);
	return ret;
}
