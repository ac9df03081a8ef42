"""config.json: loading, JSON Schema validation and semantic checks.

The public surface the rest of pyrunc codes against:

* ``load_config(bundle, container=None) -> dict``: read, parse and fully
  validate <bundle>/config.json, raising ``pyrunc.errors.ConfigError``.
* ``validate(instance, schema="config") -> [(pointer, message)]`` for the
  "config", "state" and "features" schemas of spec/*.json.
* ``semantic_problems(config, bundle) -> [(pointer, message)]`` for the rules
  a schema cannot express.

Importing this package stays cheap (json, re and os only; no jsonschema,
pathlib or logging) because it runs on every ``pyrunc create``.
"""

from pyrunc.spec.load import load_config
from pyrunc.spec.semantic import semantic_problems
from pyrunc.spec.validator import validate

__all__ = ["load_config", "semantic_problems", "validate"]
