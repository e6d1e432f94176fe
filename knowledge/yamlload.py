"""YAML loading with libyaml's C parser when present (several times faster).

Knowledge files are read once per process, but the CLI is a process per
command, so parse time is start-up time the user waits for.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    return yaml.load(stream, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


YAMLError = yaml.YAMLError
