"""Differential OCI runtime-spec conformance harness: a runtime under test against an oracle.

Every scenario cites one requirement of runtime-spec v1.3.0 (spec file and
section), builds its own busybox bundle, runs it under the runtime and,
separately, under the oracle (runc), and judges each run only by what can be
observed from outside: /proc/PID files, cgroup files, a probe's output, the
state JSON, exit codes and hook records. The harness never imports the
runtime it tests, so it judges pyrunc exactly as it judges runc.
"""
