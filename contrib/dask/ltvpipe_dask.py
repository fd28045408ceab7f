#!/usr/bin/python3
"""Runs ltvpipe's per-user work as shards on a Dask distributed cluster.

    ltvpipe_dask.py features --scheduler tcp://HOST:8786 --shards N [--train] [--output F]
    ltvpipe_dask.py score    --scheduler tcp://HOST:8786 --shards N --output F

features: every shard's `ltvpipe run --only ingest --shard i/N` as one Dask
task, then the as_of of the whole data (the latest event over the shards,
unless --as-of is given), then every shard's `ltvpipe run --to features
--shard i/N --as-of T`, then `ltvpipe merge` of the shard registries into the
main registry (here, on this machine), and with --train `ltvpipe run`, which
finds ingest and features up to date and trains from tiers on; with
--output F it then scores as `score` does.

score: every shard's `ltvpipe score --shard i/N`, then `ltvpipe merge-scores`
into F (byte-identical to an unsharded `ltvpipe score --output F`).

Every path (the ltvpipe binary, the configuration, the input files, the
working directory, the shard registries and the main registry) must be the
same on every worker: run it from a directory on a shared filesystem. The
shard registries go to WORKDIR/shard-I-of-N.sqlite (default WORKDIR: shards).

A shard is idempotent like a stage: running it again finds its artefacts up to
date. When a shard fails (its command exits non-zero, or its worker dies) the
driver still waits for the others, records which shards finished in
WORKDIR/dask-state.json, says which failed and exits 1 before the merge, so the
main registry is unchanged. Rerunning the same command retries only the shards
that did not finish; a run that completes removes the state file.

Debian: apt-get install python3-distributed (dask-scheduler, dask-worker).
Run it with /usr/bin/python3 (the Debian interpreter that has `distributed`).
"""

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from distributed import Client, as_completed

STATE_FILE = "dask-state.json"


def run_shard(argv, cwd, label, hold=None):
    """The Dask task: runs one ltvpipe command on the worker.

    Returns {ok, rc, seconds, worker, pid, out}. The child is killed with the
    worker (PR_SET_PDEATHSIG), so a killed worker leaves no ltvpipe behind
    still writing its shard. `hold` is a test hook (LTVPIPE_DASK_TEST_HOLD):
    "FILE:LABEL" makes the task of that label, once, write the worker's pid
    to FILE.pid and wait, so a test can kill -9 the worker mid-run.
    """
    import ctypes
    import socket

    if hold:
        path, _, want = hold.partition(":")
        if want == label:
            try:
                os.rename(path, path + ".taken")  # once: the retry does not hold
            except OSError:
                pass
            else:
                with open(path + ".pid.tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(path + ".pid.tmp", path + ".pid")
                time.sleep(3600)  # until the test kills the worker, however loaded the machine

    def die_with_worker():
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    started = time.time()
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       preexec_fn=die_with_worker, check=False)
    out = p.stdout.decode("utf-8", "replace")
    return {"ok": p.returncode == 0, "rc": p.returncode, "seconds": time.time() - started,
            "worker": socket.gethostname(), "pid": os.getpid(), "out": out[-4000:]}


class Driver:
    def __init__(self, args):
        self.args = args
        self.cwd = os.getcwd()
        self.ltvpipe = os.path.abspath(args.ltvpipe)
        self.workdir = os.path.abspath(args.workdir)
        self.n = args.shards
        self.state_path = os.path.join(self.workdir, STATE_FILE)
        self.hold = os.environ.get("LTVPIPE_DASK_TEST_HOLD")
        self.common = []
        if args.config:
            self.common += ["--config", os.path.abspath(args.config)]
        for kv in args.set or []:
            self.common += ["--set", kv]
        os.makedirs(self.workdir, exist_ok=True)
        self.state = self.load_state()
        self.client = None

    def say(self, msg):
        print(f"dask: {msg}", flush=True)

    # ---- state: which shards of which phase finished, for a rerun ----

    def signature(self):
        a = self.args
        # Not --output: the shards' parts do not depend on where the merged file goes.
        return [a.command, self.n, self.common, a.as_of, a.model]

    def load_state(self):
        try:
            with open(self.state_path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            return {"signature": self.signature(), "done": {}}
        if state.get("signature") != self.signature():
            self.say(f"{self.state_path} is from another command; starting over")
            return {"signature": self.signature(), "done": {}}
        return state

    def save_state(self):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, self.state_path)

    def shard_registry(self, i):
        return os.path.join(self.workdir, f"shard-{i}-of-{self.n}.sqlite")

    # ---- one phase: a command per shard on the cluster ----

    def phase(self, name, argv_of):
        """Runs argv_of(i) for every shard not yet done in this phase; True when all are done."""
        done = self.state["done"].setdefault(name, {})
        todo = [i for i in range(self.n) if str(i) not in done]
        if len(todo) < self.n:
            self.say(f"{name}: shards {sorted(int(k) for k in done)} done earlier, skipped; "
                     f"running {todo}")
        if not todo:
            return True
        if self.client is None:
            self.client = Client(self.args.scheduler, timeout=30)
            self.say(f"connected to {self.args.scheduler}: "
                     f"{len(self.client.scheduler_info()['workers'])} workers")
        started = time.time()
        futures = {}
        for i in todo:
            label = f"{name}:{i}"
            fut = self.client.submit(run_shard, argv_of(i), self.cwd, label, self.hold,
                                     key=f"ltvpipe-{name}-{i}-of-{self.n}-{time.time_ns()}",
                                     pure=False)
            futures[fut] = i
        failed = {}
        for fut in as_completed(list(futures)):
            i = futures[fut]
            try:
                r = fut.result()
            except Exception as e:  # KilledWorker, a lost connection...
                failed[i] = f"{type(e).__name__}: {e}"
                self.say(f"{name}: shard {i}/{self.n} FAILED: {failed[i]}")
                continue
            if not r["ok"]:
                last = [l for l in r["out"].splitlines() if l.strip()][-3:]
                failed[i] = f"exit {r['rc']} on {r['worker']}: " + " | ".join(last)
                self.say(f"{name}: shard {i}/{self.n} FAILED: {failed[i]}")
                continue
            done[str(i)] = {"seconds": round(r["seconds"], 3), "worker": r["worker"]}
            self.save_state()
            self.say(f"{name}: shard {i}/{self.n} done in {r['seconds']:.2f} s on {r['worker']} "
                     f"({len(done)}/{self.n} done)")
        self.state.setdefault("seconds", {})[name] = round(time.time() - started, 3)
        self.save_state()
        if failed:
            self.say(f"{name}: {len(failed)} of {self.n} shards failed: "
                     f"{', '.join(f'{i}/{self.n}' for i in sorted(failed))}")
        return not failed

    def local(self, argv, what):
        """A command on this machine (merge, merge-scores, training), its output shown."""
        self.say(f"{what}: {' '.join(argv)}")
        started = time.time()
        p = subprocess.run(argv, check=False)
        self.state.setdefault("seconds", {})[what] = round(time.time() - started, 3)
        if p.returncode != 0:
            self.say(f"{what} FAILED (exit {p.returncode})")
        return p.returncode == 0

    def fail(self, where):
        self.say(f"stopped: {where}. The main registry was not changed by this run. Rerun the "
                 f"same command to retry only the shards that did not finish ({self.state_path}).")
        return 1

    def finish(self):
        timing = self.state.get("seconds", {})
        self.say("seconds per phase: " + ", ".join(f"{k} {v:.2f}" for k, v in timing.items()))
        try:
            os.unlink(self.state_path)
        except OSError:
            pass
        return 0

    # ---- features ----

    def as_of(self):
        if self.args.as_of:
            return self.args.as_of
        latest = None
        for i in range(self.n):
            db = sqlite3.connect(f"file:{self.shard_registry(i)}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'max_event_time'").fetchone()
            finally:
                db.close()
            if row:
                latest = max(latest or int(row[0]), int(row[0]))
        if latest is None:
            raise SystemExit("dask: no shard ingested any event; pass --as-of")
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(latest))

    def features(self):
        shard_set = lambda i: ["--set", f"registry.path={self.shard_registry(i)}"]
        spec = lambda i: ["--shard", f"{i}/{self.n}"]
        if not self.phase("ingest", lambda i: [self.ltvpipe, "run", "--only", "ingest", *spec(i),
                                               *self.common, *shard_set(i)]):
            return self.fail("an ingest shard failed")
        as_of = self.as_of()
        self.say(f"as_of {as_of} for every shard")
        if not self.phase("features", lambda i: [self.ltvpipe, "run", "--only", "features",
                                                 *spec(i), "--as-of", as_of, *self.common,
                                                 *shard_set(i)]):
            return self.fail("a features shard failed")
        shards = [self.shard_registry(i) for i in range(self.n)]
        if not self.local([self.ltvpipe, "merge", *self.common, *shards], "merge"):
            return self.fail("the merge failed")
        if self.args.train and not self.local([self.ltvpipe, "run", *self.common, "--as-of", as_of],
                                              "train"):
            self.say("training failed; the merged features are in the main registry")
            return 1
        if self.args.output:
            return self.score()
        return self.finish()

    # ---- score ----

    def score(self):
        out = os.path.abspath(self.args.output)
        parts = os.path.join(self.workdir, "scores")
        os.makedirs(parts, exist_ok=True)
        part = lambda i: os.path.join(parts, f"scores-{i}-of-{self.n}.csv")
        extra = []
        if self.args.model:
            extra += ["--model", self.args.model]
        if self.args.as_of:
            extra += ["--as-of", self.args.as_of]
        if not self.phase("score", lambda i: [self.ltvpipe, "score", "--shard", f"{i}/{self.n}",
                                              *extra, *self.common, "--output", part(i)]):
            return self.fail("a score shard failed")
        if not self.local([self.ltvpipe, "merge-scores", *self.common, "--output", out,
                           *[part(i) for i in range(self.n)]], "merge-scores"):
            return self.fail("merge-scores failed")
        return self.finish()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["features", "score"])
    p.add_argument("--scheduler", required=True, help="the Dask scheduler, e.g. tcp://10.0.0.1:8786")
    p.add_argument("--shards", type=int, required=True, help="N: shards 0/N .. N-1/N")
    p.add_argument("--workdir", default="shards", help="shard registries, score parts, state")
    p.add_argument("--ltvpipe", default="./ltvpipe", help="the ltvpipe binary (same path on workers)")
    p.add_argument("--config", help="ltvpipe --config F")
    p.add_argument("--set", action="append", metavar="K=V", help="ltvpipe --set K=V (repeatable)")
    p.add_argument("--as-of", help="data cut-off; default: the latest event of all shards")
    p.add_argument("--train", action="store_true", help="features: train after the merge")
    p.add_argument("--model", help="score: model version or alias (default production)")
    p.add_argument("--output", help="score (and features, after training): the merged users CSV")
    args = p.parse_args()
    if args.shards < 1:
        p.error("--shards must be >= 1")
    if args.command == "score" and not args.output:
        p.error("score needs --output F")
    d = Driver(args)
    try:
        return d.features() if args.command == "features" else d.score()
    finally:
        if d.client is not None:
            d.client.close()


if __name__ == "__main__":
    sys.exit(main())
