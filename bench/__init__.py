"""Side-by-side benchmark of pyrunc against runc (``bench/compare``).

The package is separate from ``pyrunc``: it drives both runtimes only through
their command lines, each with a private ``--root`` under a temporary
directory, and deletes every container it creates.
"""
