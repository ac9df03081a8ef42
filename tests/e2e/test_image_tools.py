"""From an image to a container without a daemon: buildah (1.28), skopeo (1.9) and umoci (0.4.7).

buildah runs a build's RUN steps, and `buildah run`, through whatever runtime `--runtime` names
(create, start, state, delete on a bundle of its own); skopeo copies an image out of buildah's
storage into an OCI image layout; `umoci unpack` turns that into a runtime bundle whose
config.json carries the image's args, env, working directory and user. Each scenario runs with
runc (the oracle) first, then pyrunc, and what a user sees must be the same.

buildah and skopeo get private storage (vfs, no overlay mounts), registries and policy files
under the session's work dir, so nothing on the host is read or changed; the image is built
locally from the busybox rootfs (`FROM scratch`, no network). Each runtime is reached through a
wrapper that logs the commands it was given, so a scenario cannot pass with the wrong runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc.testing.busybox import build_rootfs
from tests.e2e.conftest import RUNTIMES, Result, Workdir, assert_same, both, ensure_packages, run

pytestmark = [pytest.mark.root, pytest.mark.slow]

SCRATCH = "pyrunc-scratch"  # the working container `buildah from scratch` makes
# The image config `buildah config` gives the scratch container: what umoci must carry over.
SCRATCH_CONFIG = ["--cmd", '["sh", "-c", "id; pwd; echo $GREETING; echo $0"]', "--env", "GREETING=hi",
                  "--workingdir", "/tmp", "--user", "65534:65534"]
# umoci's config has no additionalGids (so `id` shows no groups); buildah run's has the user's group.
SCRATCH_SEES = ["uid=65534(nobody) gid=65534(nobody)", "/tmp", "hi", "sh"]
BUILDAH_RUN_SEES = ["uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)", "/tmp", "hi"]
CONTAINERFILE = """\
FROM scratch
ADD rootfs.tar /
RUN echo "RUN step: uid $(id -u) in $(pwd)" && mkdir /work && echo "made by a RUN step" > /work/made \\
    && echo "app:x:1234:1234::/work:/bin/sh" >> /etc/passwd
ENV GREETING=hello-from-bud
WORKDIR /work
USER 1234:1234
CMD ["sh", "-c", "id; pwd; echo $GREETING; cat made"]
"""
BUD_SEES = ["uid=1234(app) gid=1234", "/work", "hello-from-bud", "made by a RUN step"]


class ImageTools:
    """buildah and skopeo confined to one directory; runtime wrappers that log their calls."""

    def __init__(self, path: Path):
        self.path = path
        self.storage = path / "storage"
        self.runroot = path / "runroot"
        (path / "tmp").mkdir(parents=True)
        (path / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.storage}"\nrunroot = "{self.runroot}"\n')
        (path / "registries.conf").write_text("unqualified-search-registries = []\n")
        (path / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        (path / "containers.conf").write_text(
            '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\nnetns = "none"\n'
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=str(path / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(path / "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=str(path / "registries.conf"),
                        TMPDIR=str(path / "tmp"))  # buildah's bundles go here, not /var/tmp
        self.wrappers: dict[str, Path] = {}
        for name, binary in RUNTIMES.items():
            w = path / f"{name}-logged"
            w.write_text(f'#!/bin/sh\necho "$*" >> {path / name}.calls\nexec {binary} "$@"\n')
            w.chmod(0o755)
            self.wrappers[name] = w
        self.images: dict[str, str] = {}

    def buildah(self, *args: str, timeout: float = 120) -> Result:
        return run(["buildah", "--root", str(self.storage), "--runroot", str(self.runroot),
                    "--storage-driver", "vfs", *args], env=self.env, timeout=timeout)

    def calls(self, runtime: str) -> list[str]:
        """The commands buildah gave the runtime since the last call (and forget them)."""
        log = self.path / f"{runtime}.calls"
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        with open(self.path / f"{runtime}.all-calls", "a") as f:
            f.writelines(line + "\n" for line in lines)
        return lines

    def commands(self, runtime: str) -> list[str]:
        """Which runtime commands buildah used, in first-use order (state is polled: counts vary)."""
        return list(dict.fromkeys(line.split()[0] for line in self.calls(runtime)))

    def bud(self, runtime: str, containerfile: str, tag: str) -> Result:
        ctx = self.path / f"ctx-{tag}"
        ctx.mkdir(exist_ok=True)
        shutil.copy2(self.path / "rootfs.tar", ctx / "rootfs.tar")
        (ctx / "Containerfile").write_text(containerfile)
        return self.buildah("bud", "--runtime", str(self.wrappers[runtime]), "--network", "none",
                            "-f", str(ctx / "Containerfile"), "-t", f"localhost/{tag}:latest", str(ctx))

    def bundle(self, image: str, name: str) -> Path:
        """skopeo copies the image into an OCI layout; umoci unpacks it into a bundle."""
        layout = self.path / "layout"
        storage = f"containers-storage:[vfs@{self.storage}+{self.runroot}]{image}"
        r = run(["skopeo", "--policy", str(self.path / "policy.json"), "copy", "-q", storage,
                 f"oci:{layout}:{name}"], env=self.env)
        assert r.rc == 0, r.err
        bundle = self.path / f"bundle-{name}"
        r = run(["umoci", "unpack", "--image", f"{layout}:{name}", str(bundle)])
        assert r.rc == 0, r.err
        return bundle

    def leftovers(self) -> list[tuple[str, str]]:
        """(runtime, id) of the containers buildah had a runtime make that still exist there
        (buildah gives no --root: the runtime's default)."""
        left = []
        for name, binary in RUNTIMES.items():
            log = self.path / f"{name}.all-calls"
            ids = {line.split()[-1] for line in (log.read_text().splitlines() if log.exists() else [])}
            left += [(name, cid) for cid in sorted(ids & set(run([binary, "list", "-q"]).lines))]
        return left


@pytest.fixture(scope="module")
def tools(workdir: Workdir) -> Iterator[ImageTools]:
    reason = ensure_packages("buildah", "skopeo", "umoci")
    if reason:
        pytest.skip(reason)
    t = ImageTools(workdir.path / "image-tools")
    rootfs = build_rootfs(t.path / "rootfs")
    with tarfile.open(t.path / "rootfs.tar", "w") as tar:
        tar.add(rootfs, arcname=".")
    try:
        assert t.buildah("from", "--name", SCRATCH, "scratch").rc == 0
        assert t.buildah("add", SCRATCH, str(t.path / "rootfs.tar"), "/").rc == 0
        assert t.buildah("config", *SCRATCH_CONFIG, SCRATCH).rc == 0
        yield t
    finally:
        for name, cid in t.leftovers():  # none, unless a test failed (they assert it)
            subprocess.run([RUNTIMES[name], "delete", "--force", cid], capture_output=True, timeout=30)
        t.buildah("rm", "--all")
        t.buildah("rmi", "--all", "--force")


def test_buildah_run_on_a_scratch_container(tools: ImageTools):
    """`buildah run --runtime` on a `from scratch` container: output, exit status, nothing left."""
    def scenario(rt: str, binary: str) -> dict:
        r = tools.buildah("run", "--runtime", str(tools.wrappers[rt]), "--network", "none", SCRATCH, "--",
                          "sh", "-c", "id; pwd; echo $GREETING; hostname >/dev/null; echo to-stderr >&2")
        got = {"rc": r.rc, "out": r.lines, "err": [ln for ln in r.err.splitlines() if "to-stderr" in ln],
               "commands": tools.commands(rt)}
        r = tools.buildah("run", "--runtime", str(tools.wrappers[rt]), "--network", "none", SCRATCH, "--",
                          "sh", "-c", "exit 3")
        got["exit"] = r.rc
        got["exit_err"] = "exit status 3" in r.err
        tools.calls(rt)
        return got

    assert_same(both(scenario), {"rc": 0, "out": BUILDAH_RUN_SEES, "err": ["to-stderr"],
                                 "commands": ["create", "start", "state", "delete"],
                                 "exit": 3, "exit_err": True})
    assert tools.leftovers() == []


def test_buildah_bud_runs_the_run_steps(tools: ImageTools):
    """`buildah bud --runtime` with a RUN step: it runs as root in /, its files land in the image,
    and a failing RUN step fails the build with its exit status."""
    def scenario(rt: str, binary: str) -> dict:
        r = tools.bud(rt, CONTAINERFILE, f"bud-{rt}")
        got = {"rc": r.rc, "run_step": [ln for ln in r.lines if ln.startswith("RUN step:")],
               "commands": tools.commands(rt)}
        if r.rc == 0:
            tools.images[rt] = f"localhost/bud-{rt}:latest"
        r = tools.bud(rt, "FROM scratch\nADD rootfs.tar /\nRUN echo failing; exit 3\n", f"bud-fails-{rt}")
        got["failing"] = (r.rc, "exit status 3" in r.err, "failing" in r.out)
        tools.calls(rt)
        return got

    assert_same(both(scenario), {"rc": 0, "run_step": ["RUN step: uid 0 in /"],
                                 "commands": ["create", "start", "state", "delete"],
                                 "failing": (3, True, True)})
    assert tools.leftovers() == []


def run_bundle(binary: str, bundle: Path, root: Path, cid: str, *, tty: bool) -> dict:
    """`RUNTIME run` on an unpacked bundle as a user would; the container is deleted afterwards."""
    try:
        r = run([binary, "--root", str(root), "run", "--bundle", str(bundle), cid], tty=tty)
        return {"rc": r.rc, "out": r.lines, "left": run([binary, "--root", str(root), "list", "-q"]).lines}
    finally:
        subprocess.run([binary, "--root", str(root), "delete", "--force", cid], capture_output=True, timeout=30)


@pytest.mark.parametrize("source", ["commit", "bud"])
def test_umoci_bundle_runs_with_the_image_config(tools: ImageTools, source: str):
    """buildah commit (or bud) -> skopeo -> OCI layout -> umoci unpack -> run: the image's args,
    env, working directory and user are what the container sees, with umoci's config as it
    wrote it (a terminal) and with the terminal turned off."""
    if source == "commit":
        assert tools.buildah("commit", "-q", SCRATCH, "localhost/committed:latest").rc == 0
        image, sees = "localhost/committed:latest", SCRATCH_SEES
    else:
        if "pyrunc" not in tools.images:  # built by the bud test; again if it ran alone
            assert tools.bud("pyrunc", CONTAINERFILE, "bud-pyrunc").rc == 0
            tools.images["pyrunc"] = "localhost/bud-pyrunc:latest"
        image, sees = tools.images["pyrunc"], BUD_SEES
    bundle = tools.bundle(image, source)
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["terminal"] is True, "umoci's default changed: the tty run below needs it"
    plain = tools.path / f"bundle-{source}-plain"
    shutil.copytree(bundle, plain, symlinks=True)
    config["process"]["terminal"] = False
    (plain / "config.json").write_text(json.dumps(config))

    def scenario(rt: str, binary: str) -> dict:
        root = tools.path / f"{rt}-root"
        return {"tty": run_bundle(binary, bundle, root, f"umoci-{source}-tty", tty=True),
                "plain": run_bundle(binary, plain, root, f"umoci-{source}", tty=False)}

    expected = {"rc": 0, "out": sees, "left": []}
    assert_same(both(scenario), {"tty": expected, "plain": expected})
