"""The errors a program can catch: every one is a pyrunc.Error naming container, step and cause.

    sudo .venv/bin/python examples/errors.py BUNDLE
"""

import json
import os
import sys

import pyrunc

bundle = sys.argv[1] if len(sys.argv) > 1 else "bundle"
with open(os.path.join(bundle, "config.json")) as f:
    config = json.load(f)

# A bad config: every problem with its JSON pointer, before anything is made.
config["process"]["args"] = "echo hi"  # must be a list
config["hostname"] = 7
try:
    pyrunc.run(bundle, config=config)
except pyrunc.ConfigError as e:
    print("bad config at", sorted(e.pointers))  # ['/hostname', '/process/args']

# A bad argument is an InvalidArgument (also a ValueError).
try:
    pyrunc.run(bundle, "echo hi")
except ValueError as e:
    print("bad argument:", e.cause)

# A step that fails inside the container names the container and the step.
try:
    pyrunc.run(bundle, ["/no/such/program"], id="example-missing")
except pyrunc.Error as e:
    print(e.container, "failed at", e.step)  # example-missing failed at create: look_up_executable

# A container that is not there.
try:
    pyrunc.Container("no-such-container").start()
except pyrunc.NotFound as e:
    print("not found:", e.container)
