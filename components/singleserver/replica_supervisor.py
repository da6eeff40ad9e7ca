"""A single-server replica's PID 1 (fastapi-infra's components/singleserver,
which embeds this file): binds the port and runs uvicorn's workers on it;
see ReplicaSupervisor in app.go for why.

    python3 replica_supervisor.py DRAIN LINGER PORT WORKERS COMMAND...

COMMAND serves the listening socket as file descriptor 3 (uvicorn --fd 3).
"""
import os, signal, socket, subprocess, sys, time
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
running = {}
stopping = []
def start():
    worker = subprocess.Popen(command, pass_fds=(3,))
    running[worker.pid] = worker
def terminate_all():
    # Our reference first: the port refuses once the workers close theirs.
    listener.close()
    for worker in running.values():
        worker.send_signal(signal.SIGTERM)
def stop(signum, frame):
    if stopping:
        return
    stopping.append(signum)
    time.sleep(drain)
    terminate_all()
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, lambda signum, frame: [w.send_signal(signal.SIGINT) for w in running.values()])
def listening():
    try:
        return listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:  # closed by terminate_all()
        return True
# One worker first, the rest once it listens (SO_ACCEPTCONN on the shared
# socket): all at once shared the CPU limit and the first answered only
# when all had imported the app (5.6-8.9 s for 3 at 0.5 CPU), after a
# crash too; alone it answers in about a third of that.
start()
first = next(iter(running.values()))
deadline = time.monotonic() + 60
while not stopping and first.poll() is None and time.monotonic() < deadline and not listening():
    time.sleep(0.05)
if first.returncode is not None and not stopping:
    sys.exit(first.returncode if first.returncode > 0 else 1)  # it crashed starting
for _ in range(0 if stopping else workers - 1):
    start()
code = 0
while running:
    pid, status = os.wait()
    worker = running.pop(pid, None)
    if worker is None:
        continue
    worker.returncode = os.waitstatus_to_exitcode(status)
    exited = worker.returncode if worker.returncode >= 0 else 128 - worker.returncode
    if stopping and worker.returncode in (-signal.SIGTERM, -signal.SIGINT):
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
