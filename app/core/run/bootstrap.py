"""The sandbox's bootstrap: the Python source that runs in the child before the code.

The child is started through this bootstrap (``BOOTSTRAP``, run with ``python -I -c``) rather
than a ``preexec_fn``: the UI calls ``run_code`` from a worker thread, and CPython documents
that ``preexec_fn`` is not safe when threads exist. The bootstrap runs after the exec, in a
single-threaded interpreter, sets everything up (rlimits; on Linux the network, mount and PID
namespaces, the mounts of mounts.py, no capabilities), reports what it managed on a status
pipe, and then execs the code (or, for the python-guard fallback, runs it in the same
interpreter with an audit hook installed). Its one argument is the JSON config that
``sandbox._run`` writes.
"""

from app.core.run.mounts import MOUNTS_SOURCE

# Kept as source text so it runs under `python -I -c`, with nothing imported from the app.
BOOTSTRAP = r'''
import json, os, sys
''' + MOUNTS_SOURCE + r'''
cfg = json.loads(sys.argv[1])
status_fd = cfg["status_fd"]
status = {"isolation": None, "filesystem": "open", "notes": [], "hidden": []}


def report():
    os.write(status_fd, json.dumps(status).encode())
    os.close(status_fd)


def fail(message):
    status["error"] = message
    report()
    os._exit(125)


def errno_text(e):
    return os.strerror(e) if e else "unknown error"


posix = os.name == "posix"
linux = sys.platform.startswith("linux")
root = cfg["root"]
libc = None
if linux:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG SIGKILL: if the app dies, so does the run

if posix:
    import resource

    def limit(which, soft, hard=None):
        try:
            resource.setrlimit(which, (soft, soft if hard is None else hard))
        except (ValueError, OSError) as e:
            status["notes"].append("rlimit %s not set: %s" % (which, e))

    limit(resource.RLIMIT_CORE, 0)
    limit(resource.RLIMIT_FSIZE, cfg["file_bytes"])
    limit(resource.RLIMIT_CPU, cfg["cpu_s"], cfg["cpu_s"] + 1)

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
pidns = False
if linux and cfg["namespaces"]:
    uid, gid = os.getuid(), os.getgid()
    wanted = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID
    made = libc.unshare(wanted) == 0
    if not made and os.geteuid() != 0:
        made = libc.unshare(wanted | CLONE_NEWUSER) == 0
        if made:
            try:  # map ourselves to ourselves, so files we create are still ours
                for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid, uid)),
                                   ("gid_map", "%d %d 1" % (gid, gid))):
                    with open("/proc/self/" + name, "w") as f:
                        f.write(text)
            except OSError as e:
                fail("could not map the user into the sandbox's namespace (%s)" % e)
    if made:
        pidns = True
        status["isolation"] = "netns"
        try:  # loopback up, so code can still talk to itself on 127.0.0.1
            import fcntl, socket, struct
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            flags = struct.unpack_from("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0)))[1]
            fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))
            s.close()
        except OSError as e:
            status["notes"].append("loopback stays down: %s" % e)
        # Every mount read-only except the sandbox folder (needs mount_setattr, Linux 5.12+),
        # the home and the app's folders hidden: see mounts.py.
        make_mounts(libc, ctypes, cfg, status)

if status["isolation"] is None:
    status["isolation"] = "python-guard"
    status["notes"].append("home and app folders not hidden: no mount namespace here")
    if cfg["language"] != "python":
        status["error"] = "no-netns-for-shell"
        report()
        os._exit(126)

report()


def drop_privileges():
    """Run the code with no capabilities: as root it could otherwise leave the namespaces
    (setns to /proc/1/ns/net), remount / read-write, or signal the app."""
    if posix:
        limit(resource.RLIMIT_AS, cfg["memory_bytes"])
    if not linux:
        return
    PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 38, 47
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # clear all ambient capabilities
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


if pidns:
    pid = os.fork()
    if pid == 0:  # PID 1 of the new namespace: when it ends, the kernel kills everything in it
        libc.prctl(1, 9, 0, 0, 0)
        try:  # a /proc that shows only this namespace's processes, read-only
            if libc.mount(b"proc", b"/proc", b"proc", 2 | 4 | 8 | 1, None) != 0:
                raise OSError(ctypes.get_errno(), "mount /proc")
        except OSError:  # the host's: /proc/<pid>/root would show what is hidden, so none at all
            if status["hidden"]:
                libc.mount(b"tmpfs", b"/proc", b"tmpfs", 2 | 4 | 8 | 1, b"size=4k,mode=555")
        drop_privileges()
        try:
            os.execv(cfg["argv"][0], cfg["argv"])
        except OSError as e:
            os.write(2, ("could not start %s: %s\n" % (cfg["argv"][0], e)).encode())
            os._exit(127)
    import signal
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            _, st = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    os.closerange(0, 3)
    if os.WIFSIGNALED(st):  # die the same way, so the app sees the same signal
        sig = os.WTERMSIG(st)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(st))

# The python-guard fallback: this interpreter runs the code itself, with an audit hook that
# refuses network use and starting other programs (which the hook could not watch).
drop_privileges()
NET = {"socket.connect", "socket.connect_ex", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
       "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo"}
SPAWN = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
         "os.forkpty", "os.startfile", "pty.spawn"}


def hook(event, args):
    if event in NET:
        raise PermissionError("The sandbox has no network: %s refused" % event)
    if event in SPAWN:
        raise PermissionError("The sandbox cannot start other programs on this system: %s refused" % event)


sys.addaudithook(hook)
import runpy
sys.argv = [cfg["argv"][-1]]
sys.path.insert(0, root)
del cfg, hook, status
runpy.run_path(sys.argv[0], run_name="__main__")
'''
