"""A long-lived container driven step by step: create, start, exec, update, pause, resume,
events, kill, wait; the with block deletes it however it ends.

    sudo .venv/bin/python examples/lifecycle.py ROOTFS
"""

import sys

import pyrunc

rootfs = sys.argv[1] if len(sys.argv) > 1 else "bundle/rootfs"

with pyrunc.Container.create(rootfs=rootfs, args=["sleep", "60"], pids=32) as c:
    print(c.id, c.status)  # pyrunc-... created
    c.start()
    print(c.status)  # running

    r = c.exec(["sh", "-c", "echo $GREETING from $(hostname)"], env={"GREETING": "hello"},
               capture=True, text=True)
    print(r.stdout.strip())  # hello from pyrunc

    c.update(pids=16)  # the new limit reaches the cgroup
    c.pause()
    print(c.status)  # paused
    c.resume()

    events = c.events(interval=0.5)
    first = next(events)  # a stats event at once
    events.close()
    print(first["type"], "pids.current =", first["data"]["pids"]["current"])

    # PID 1 of a pid namespace gets no default action for SIGTERM: sleep would ignore it.
    c.kill("KILL")
    print("exit:", c.wait(timeout=10))  # exit: -9 (killed by SIGKILL)
# deleted here

try:
    pyrunc.Container.get(c.id)
except pyrunc.NotFound as e:
    print("gone:", e.container)
