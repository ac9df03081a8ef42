"""pyrunc: an OCI runtime with runc's command line, written in Python.

This module imports nothing: every command pays for the modules it uses and
no more (see docs/architecture.md, "Keeping it fast").
"""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"
