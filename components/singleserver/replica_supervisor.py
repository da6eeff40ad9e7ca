"""A single-server replica's PID 1 (fastapi-infra's components/singleserver,
which embeds this file): binds the port and runs uvicorn's workers on it;
see ReplicaSupervisor in app.go for why.

    python3 replica_supervisor.py DRAIN LINGER PORT WORKERS COMMAND...

COMMAND serves the listening socket as file descriptor 3 (uvicorn --fd 3).
A python COMMAND (`python3 -c CODE ARGS...` or `python3 FILE ARGS...`)
runs in a fork of this process, which has imported the libraries every
worker would (PRELOAD); any other is executed.
"""
import importlib, importlib.util, os, runpy, signal, socket, sys, time, traceback
drain, linger = float(sys.argv[1]), float(sys.argv[2])
port, workers, command = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
listener.bind(("0.0.0.0", port))
# No listen() here: each worker listens once it serves (asyncio does, as
# uvicorn's own parent leaves it). A port that listened from the start
# completed handshakes for the seconds the workers took to import the
# app, and nginx's requests to a starting replica waited there (releases
# with 8-11 s requests) instead of being refused and retried elsewhere.
if listener.fileno() != 3:
    os.dup2(listener.fileno(), 3)
    listener.close()
    listener = socket.socket(fileno=3)
# Imported once here, not in every worker: libraries a FastAPI service on
# PostgreSQL imports, that do nothing but define things when imported
# (no threads, no files, no event loop), so a fork gets them ready. Each
# worker importing them itself cost 0.6 s of CPU (1.2 s at 0.5 CPU), and
# a replica's later workers were still importing inside its CPU limit
# when a release's old replicas stopped: the release's slowest requests.
# Not the app itself: its import may open files or make values a fork
# must not share (prometheus_client's multiprocess files are per pid).
PRELOAD = ("uvicorn", "uvicorn.main", "fastapi", "pydantic", "sqlalchemy", "psycopg2", "psycopg", "asyncpg", "alembic")
python = os.path.basename(command[0]).startswith("python") and len(command) > 1
forking = python and (command[1] == "-c" or not command[1].startswith("-"))
if forking:
    for module in PRELOAD:
        try:
            if importlib.util.find_spec(module.split(".")[0]) is not None:
                importlib.import_module(module)
        except Exception as err:
            # Only a head start: a worker that needs it fails on its own.
            print(f"replica supervisor: not preloading {module}: {err!r}", file=sys.stderr, flush=True)
running = set()
stopping = []
def start():
    pid = os.fork()
    if pid:
        running.add(pid)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if not forking:
        os.set_inheritable(3, True)
        os.execvp(command[0], command)
    # As python3 would run it, in this interpreter.
    code = 1
    try:
        if command[1] == "-c":
            sys.argv = ["-c"] + command[3:]
            exec(compile(command[2], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        else:
            sys.argv = command[1:]
            runpy.run_path(command[1], run_name="__main__")
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
        if not isinstance(exit.code, (int, type(None))):
            print(exit.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
def terminate_all():
    # Our reference first: the port refuses once the workers close theirs.
    listener.close()
    for pid in running:
        os.kill(pid, signal.SIGTERM)
def stop(signum, frame):
    if stopping:
        return
    stopping.append(signum)
    time.sleep(drain)
    terminate_all()
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, lambda signum, frame: [os.kill(pid, signal.SIGINT) for pid in running])
for _ in range(workers):
    start()
code = 0
while running:
    pid, status = os.wait()
    if pid not in running:
        continue
    running.discard(pid)
    returncode = os.waitstatus_to_exitcode(status)
    exited = returncode if returncode >= 0 else 128 - returncode
    if stopping and returncode in (-signal.SIGTERM, -signal.SIGINT):
        # uvicorn 0.29+ ends a graceful stop by the signal it got.
        exited = 0
    code = code or exited
    if not stopping:
        code = code or 1
        stopping.append("crash")
        terminate_all()
if stopping != ["crash"]:
    time.sleep(linger)
sys.exit(code)
