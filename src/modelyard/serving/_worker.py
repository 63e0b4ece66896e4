"""Entry point of one worker process started by ``modelyard serve --workers N``.

Run as ``python -m modelyard.serving._worker '<json spec>'``; the spec carries the
resolved package path, name, version, expected digests and the serve options.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from modelyard.serving.options import ServeOptions
from modelyard.serving.server import ResolvedModel, run_worker


def main(argv: list[str]) -> None:
    """Parse the spec and serve with a ``SO_REUSEPORT`` socket."""
    spec = json.loads(argv[0])
    options = ServeOptions.from_dict(spec["options"])
    logging.basicConfig(
        level=options.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    resolved = ResolvedModel(
        Path(spec["path"]), spec["name"], spec["version"], spec["expected_files"]
    )
    run_worker(resolved, options, reuse_port=True)


if __name__ == "__main__":
    main(sys.argv[1:])
