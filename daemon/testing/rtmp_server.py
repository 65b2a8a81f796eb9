"""A loopback RTMP server: nginx with its RTMP module (Debian's ``nginx`` and ``libnginx-mod-rtmp``), in the
foreground, relaying whatever is published to ``rtmp://127.0.0.1:PORT/live/NAME`` to its players.

    python -m daemon.testing.rtmp_server --port 1935

Prints ``ready rtmp://127.0.0.1:PORT/live`` once it accepts connections. SIGTERM stops it; nginx is its child
and dies with it even on SIGKILL (a parent-death signal), so a test can kill it like a camera.
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX = "/usr/sbin/nginx"
PR_SET_PDEATHSIG = 1  # prctl(2)


def config(port: int, scratch: Path) -> str:
    return f"""load_module {MODULE};
daemon off;
master_process off;
pid {scratch / "nginx.pid"};
error_log {scratch / "error.log"} warn;
events {{}}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
        }}
    }}
}}
"""


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if not MODULE.is_file() or not Path(NGINX).is_file():
        print("nginx with libnginx-mod-rtmp is not installed (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="argusd-rtmp-") as directory:  # left behind only on SIGKILL
        return serve(args.port, Path(directory))


def serve(port: int, scratch: Path) -> int:
    (scratch / "nginx.conf").write_text(config(port, scratch))
    # nginx opens its default error log before reading the config unless -e names another
    command = [NGINX, "-p", str(scratch), "-e", str(scratch / "error.log"), "-c", str(scratch / "nginx.conf")]
    server = subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: S603 (a fixed binary, our own paths)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    if server.poll() is not None:
        print((scratch / "error.log").read_text(errors="replace"), file=sys.stderr)
        return 1
    print(f"ready rtmp://127.0.0.1:{port}/live", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    return server.wait()

if __name__ == "__main__":
    sys.exit(main())
