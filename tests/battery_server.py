"""Runs `itt-xling` command lines as forked children of one process that has imported the package once.

Each child is a fresh process: it changes to its folder, sends its stdout and stderr to files and runs
`itt_xling.cli.main(argv)` exactly as the console script does (`sys.exit(main())`), so an uncaught exception prints
its traceback and exits 1. Only the import of torch, transformers and datasets is shared; nothing of a case runs
before the fork. Reads a JSON list of jobs (`cwd`, `argv`, `out`, `err`, `timeout`) on stdin and writes a JSON list
of exit statuses ('timeout' for a child killed at its limit), in the same order.
"""
import importlib, json, os, pkgutil, signal, sys, time, traceback

def preload():
    "Import every module of the package (and so torch, transformers, datasets) without running anything."
    import itt_xling
    for m in pkgutil.iter_modules(itt_xling.__path__):
        if not m.name.startswith('_'): importlib.import_module(f'itt_xling.{m.name}')

def child(job:dict):
    "The body of one forked child: never returns."
    rc = 1
    try:
        os.chdir(job['cwd'])
        for fd, name in ((1, 'out'), (2, 'err')):
            f = os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644); os.dup2(f, fd); os.close(f)
        sys.stdout = open(1, 'w', closefd=False); sys.stderr = open(2, 'w', closefd=False)
        sys.argv = ['itt-xling', *job['argv']]
        from itt_xling.cli import main
        try: rc = main()
        except SystemExit as e: rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException: traceback.print_exc(); rc = 1
    finally:
        try: sys.stdout.flush(); sys.stderr.flush()
        except Exception: pass
        os._exit(rc or 0)

def run_all(jobs:list, n:int) -> list:
    "Run `jobs`, at most `n` children at a time; their exit statuses in order."
    rcs, running, todo = [None]*len(jobs), {}, list(enumerate(jobs))
    while todo or running:
        while todo and len(running) < n:
            i, job = todo.pop(0)
            pid = os.fork()
            if pid == 0: child(job)
            running[pid] = (i, time.monotonic() + job.get('timeout', 900))
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            for p, (i, limit) in list(running.items()):
                if time.monotonic() > limit: os.kill(p, signal.SIGKILL); rcs[i] = 'timeout'
            time.sleep(0.02); continue
        i, _ = running.pop(pid)
        if rcs[i] is None: rcs[i] = os.waitstatus_to_exitcode(status)
    return rcs

if __name__ == '__main__':
    jobs = json.load(sys.stdin)
    preload()
    json.dump(run_all(jobs, int(sys.argv[1]) if len(sys.argv) > 1 else 2), sys.stdout)
