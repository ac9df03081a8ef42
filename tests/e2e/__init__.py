"""End-to-end suites: real callers (containerd, podman, dockerd) driving pyrunc and runc."""
