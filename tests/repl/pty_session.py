"""Drives runql's REPL through a real pseudo-terminal, as a person at a keyboard would.

usage: pty_session.py RUNQL_BINARY SCRIPT_JSON -- ARGS...

SCRIPT_JSON is a list of steps: {"send": keys} types keys (\r is Enter, \t Tab, \x03
Ctrl-C), {"expect": text} waits until the terminal shows text (ANSI colour codes removed),
{"sleep": seconds} waits, {"write": {"db": path, "sql": statement}} commits a statement to a
SQLite file (a store changing while the REPL runs). Exits 0 when every step passed and runql exited 0; otherwise
prints what the terminal showed and exits 1.
"""

import fcntl
import json
import os
import pty
import struct
import termios
import re
import select
import sys
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def main():
    binary, script = sys.argv[1], json.loads(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1 :]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.execv(binary, [binary, *args])
    # A wide terminal, so tables are not truncated to 80 columns.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    seen = b""
    shown = b""  # everything, for the failure report

    def read_some(timeout):
        nonlocal seen, shown
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        shown += data
        seen += ANSI.sub(b"", data)
        return bool(data)

    def fail(why):
        sys.stdout.write(f"{why}\n--- terminal ---\n{ANSI.sub(b'', shown).decode(errors='replace')}\n")
        sys.exit(1)

    for step in script:
        if "send" in step:
            os.write(fd, step["send"].encode())
        elif "sleep" in step:
            time.sleep(step["sleep"])
        elif "write" in step:
            import sqlite3

            db = sqlite3.connect(step["write"]["db"])
            db.execute(step["write"]["sql"])
            db.commit()
            db.close()
        elif "expect" in step:
            want = step["expect"].encode()
            deadline = time.time() + step.get("timeout", 20)
            while want not in seen:
                if time.time() > deadline or not read_some(max(0.0, deadline - time.time())):
                    if want not in seen:
                        fail(f"did not see {step['expect']!r}")
            seen = seen[seen.index(want) + len(want) :]
    deadline = time.time() + 20
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                fail(f"runql exited with {code}")
            print("ok")
            return
        read_some(0.1)
    fail("runql did not exit")


if __name__ == "__main__":
    main()
