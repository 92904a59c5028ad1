"""A stand-in for the app's process in firewall tests: it answers commands on stdin.

``probe HOST PORT`` makes a *child process* try a TCP connection (children inherit the
app's cgroup); ``self HOST PORT`` tries it in this process. Each answer is one JSON line.
Run with ``--probe HOST PORT`` it is that child.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys


def connect(host: str, port: int) -> dict:
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            return {"result": "connected", "data": s.recv(16).decode()}
    except ConnectionRefusedError:
        return {"result": "refused"}
    except OSError as e:
        return {"result": "error", "error": repr(e)}


def main() -> int:
    if sys.argv[1:2] == ["--probe"]:
        print(json.dumps(connect(sys.argv[2], int(sys.argv[3]))), flush=True)
        return 0
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd, host, port = line.split()
        if cmd == "probe":
            out = subprocess.run([sys.executable, __file__, "--probe", host, port], capture_output=True, text=True)
            print(out.stdout.strip() or json.dumps({"result": "error", "error": out.stderr}), flush=True)
        else:
            print(json.dumps(connect(host, int(port))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
