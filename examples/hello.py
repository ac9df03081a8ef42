"""Run one command in a bundle and read its output: the one-call API.

    sudo .venv/bin/python examples/hello.py BUNDLE

BUNDLE is a directory with a config.json and its rootfs (`pyrunc spec` writes a config.json;
see README, "Python API"). The container is created, started, waited for and deleted.
"""

import sys

import pyrunc

bundle = sys.argv[1] if len(sys.argv) > 1 else "bundle"

result = pyrunc.run(bundle, ["echo", "hi"], capture=True)
print(result.returncode, result.stdout)  # 0 b'hi\n'

# Input, text and an exit status other than 0: subprocess.run's conventions.
result = pyrunc.run(bundle, ["sh", "-c", "tr a-z A-Z; exit 3"], input="shout\n", text=True,
                    capture=True)
print(result.returncode, result.stdout.strip())  # 3 SHOUT
